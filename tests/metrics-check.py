#!/usr/bin/env python3
"""metrics-check.py FILE [NAME=VALUE|NAME{LABELS}=VALUE ...]

Parses FILE as the Prometheus text exposition format (as far as
netext-deploy uses it: HELP and TYPE lines, gauge samples with labels) and
fails on anything malformed: bad names, bad label quoting, a sample before
its TYPE line, duplicate series, non-numeric values, no final newline.
Then every NAME=VALUE argument must match a sample exactly (VALUE '*' means
"present"; 'NAME>0' means a positive value). Exit 0 when all holds."""
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))


def fail(msg):
    print("metrics-check: " + msg)
    sys.exit(1)


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    if not text.endswith("\n"):
        fail("no final newline")
    types, helps, samples = {}, {}, {}
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            m = re.match(r"^# HELP (%s) (.+)$" % NAME, line)
            if not m or m.group(1) in helps:
                fail("line %d: bad or repeated HELP: %r" % (n, line))
            helps[m.group(1)] = m.group(2)
        elif line.startswith("# TYPE "):
            m = re.match(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME, line)
            if not m or m.group(1) in types:
                fail("line %d: bad or repeated TYPE: %r" % (n, line))
            types[m.group(1)] = m.group(2)
        elif line.startswith("#") or not line:
            fail("line %d: unexpected %r" % (n, line))
        else:
            m = SAMPLE.match(line)
            if not m:
                fail("line %d: not a sample: %r" % (n, line))
            name, labels, value = m.group(1), m.group(2) or "", m.group(3)
            if name not in types:
                fail("line %d: %s has no TYPE line before it" % (n, name))
            try:
                v = float(value)
            except ValueError:
                fail("line %d: value %r is not a number" % (n, value))
            key = name + labels
            if key in samples:
                fail("line %d: duplicate series %s" % (n, key))
            samples[key] = v
    for name in types:
        if name not in helps:
            fail("%s has no HELP" % name)
    for want in sys.argv[2:]:
        if ">" in want:
            key, val = want.split(">", 1)
            ok = key in samples and samples[key] > float(val)
        else:
            key, val = want.rsplit("=", 1)
            ok = key in samples and (val == "*" or samples[key] == float(val))
        if not ok:
            fail("wanted %s, got %s" % (want, samples.get(key, "nothing")))
    print("metrics-check: %d series, %d metrics: OK" % (len(samples), len(types)))


main()
