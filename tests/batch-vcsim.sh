#!/bin/sh
# batch-vcsim.sh: batch mode against VMware's vcsim: 210 tenants, 5 of them
# invalid (a public IP rule on port 22), and 5 whose CreateVM_Task fails (the
# project's fault proxy answers the first five with a SOAP fault); the other
# 200 deploy with -j 4. A re-run through a clean path finishes exactly the 5
# failed ones and leaves the 200 alone. State checked with govc.
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
slow_tier
require_provider vsphere
nx_tmpdir
. "$top_srcdir/tests/vcsim-lib.sh"
. "$top_srcdir/tests/fault-lib.sh"
trap 'fp_stop_all; vcsim_stop_all; rm -rf "$NX_TMP"' EXIT
vcsim_require
fp_require
vcsim_start vcsim -trace -trace-file "$NX_TMP/trace" || exit 1
vcsim_credentials
vcsim_batch_setup || { echo "govc could not add portgroups"; exit 1; }
fp_start proxy "https://127.0.0.1:$VCSIM_PORT" --upstream-cacert "$NX_TMP/vcsim-cert.pem" \
    --rate 0 --seed 1 || exit 1
PROXY_URI="vsphere+http://127.0.0.1:$FP_PORT/sdk"
vcsim_batch_plan "$NX_TMP/plan.xml" 210 "$PROXY_URI"
# 5 invalid tenants: a public IP rule on the appliance's management port
"$PY" - "$NX_TMP/plan.xml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
for i in (3, 50, 99, 150, 201):
    s = s.replace('<tenant name="t%05d"><subscribe plan="p%d"/>' % (i, i),
                  '<tenant name="t%05d"><subscribe plan="p%d"/>'
                  '<public-ip-rule public="203.0.113.%d:22" replica="10.0.0.5:22"/>' % (i, i, i % 250), 1)
open(p, "w").write(s)
PY
fp_config '{"rules": [{"method": "CreateVM_Task", "fault": "soap-fault", "times": 5,
  "fault_type": "InsufficientResourcesFault", "message": "not enough resources on the host"}]}'
ND() { "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" "$@"; }
count_vms() { govc find / -type m -name 'netext-t*' | wc -l; }

t0=$(date +%s)
expect_exit 1 "batch of 210 through the proxy: some fail" ND -j 4 --json batch "$NX_TMP/plan.xml"
echo "# first run: $(( $(date +%s) - t0 )) s"
check_json "200 changed, 5 failed, 5 invalid" \
    "t['changed']==200 and t['failed']==5 and t['invalid']==5 and t['refused']==0"
check_json "the failures carry the server's fault" \
    "len(bad := [x for x in d['tenants'] if x['result']=='failed'])==5 and all('CreateVM_Task: InsufficientResources: not enough resources' in x.get('error','') for x in bad)"
check "the invalid ones are reported with file:line" sh -c "test \$(grep -c 'plan.xml:[0-9]*: .*port 22 is reserved' '$NX_TMP/err') = 5"
check "vcsim holds exactly 200 appliances" test "$(count_vms)" = 200
before=$(vcsim_trace_methods "$NX_TMP/trace" | awk '$2=="CreateVM_Task"{print $1}')
expect_exit 65 "re-run: the failed ones are finished, the invalid ones still refused" ND -j 4 --json batch "$NX_TMP/plan.xml"
check_json "205 done (200 up to date, 5 changed), 5 invalid" "t['up-to-date']==200 and t['changed']==5 and t['invalid']==5"
after=$(vcsim_trace_methods "$NX_TMP/trace" | awk '$2=="CreateVM_Task"{print $1}')
check "exactly 5 more CreateVM_Task reached vcsim" test "$((after - before))" = 5
check "vcsim holds 205 appliances, each once" test "$(count_vms)" = 205
check "no appliance name twice" sh -c "test \$(govc find / -type m -name 'netext-t*' | sed 's|.*/||' | sort | uniq -d | wc -l) = 0"
finish
