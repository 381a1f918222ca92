#!/bin/sh
# bash-completion.sh: contrib/bash-completion/netext-deploy, sourced into
# bash and called as bash calls it (COMP_WORDS, COMP_CWORD), without and
# (when installed) with the bash-completion package's helpers.
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
require_cmd bash "bash is missing"
nx_tmpdir
trap 'rm -rf "$NX_TMP"' EXIT
COMP=$top_srcdir/contrib/bash-completion/netext-deploy
mkdir -p "$NX_TMP/w/plans" "$NX_TMP/w/state"
cp "$top_srcdir/examples/seed.xml" "$NX_TMP/w/plans/seed.xml"
cp "$top_srcdir/examples/acme.xml" "$NX_TMP/w/acme.xml"
: >"$NX_TMP/w/notes.txt"
: >"$NX_TMP/w/image.iso"

# complete WORDS...: the candidates for the last word, one a line, sorted
# (COMPLETION_LIB: a file sourced first, e.g. bash-completion's own)
complete_words() {
    (cd "$NX_TMP/w" && bash --norc --noprofile -c '
        [ -n "$COMPLETION_LIB" ] && . "$COMPLETION_LIB"
        . "$0"
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        _netext_deploy netext-deploy "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}" | sort' "$COMP" "$@")
}
# expect "what" "wanted candidates (space separated)" WORDS...
expect() {
    desc=$1 want=$2
    shift 2
    got=$(complete_words "$@" | tr '\n' ' ' | sed 's/ $//')
    if [ "$got" = "$want" ]; then ok "$desc"; else not_ok "$desc: got '$got', wanted '$want'"; fi
}

run_all() {
    tag=$1
    expect "$tag: commands" "batch export-bundle payload rescan revoke rotate rotate-ca status subscribe unsubscribe validate" netext-deploy ""
    expect "$tag: commands starting with 'ro'" "rotate rotate-ca" netext-deploy ro
    expect "$tag: command after options" "subscribe" netext-deploy -n --connect test:///default sub
    expect "$tag: plan files and directories after the command" "acme.xml plans state" netext-deploy subscribe ""
    expect "$tag: after an option's value" "acme.xml plans state" netext-deploy -t acme status ""
    expect "$tag: into a directory" "plans/seed.xml" netext-deploy batch plans/
    expect "$tag: --tenant: the tenants of the plans on the line" "acme globex" netext-deploy subscribe plans -t ""
    expect "$tag: --tenant from a file" "acme" netext-deploy subscribe acme.xml --tenant ""
    expect "$tag: --role" "provider tenant" netext-deploy payload --role ""
    expect "$tag: --state-dir: directories" "plans state" netext-deploy --state-dir ""
    expect "$tag: --image: ISO files and directories" "image.iso plans state" netext-deploy --image ""
    expect "$tag: options starting with --d" "--dry-run" netext-deploy --d
    expect "$tag: options starting with --me" "--metrics" netext-deploy --me
    expect "$tag: options starting with --no" "--no-image" netext-deploy --no
}
run_all plain
tenants=$(sed -n 's/.*<tenant[[:space:]][^>]*name="\([^"]*\)".*/\1/p' "$NX_TMP/w/plans/seed.xml" | sort | tr '\n' ' ')
check "the seed plan's tenants are acme and globex ($tenants)" test "$tenants" = "acme globex "

# every long option --help lists is completed
all=$(complete_words netext-deploy -- | tr '\n' ' ')
for o in $("$NETEXT_DEPLOY" --help | grep -o -e '--[a-z][a-z-]*' | sort -u); do
    case " $all " in *" $o "*) ok "--help's $o is completed" ;; *) not_ok "--help's $o is not completed" ;; esac
done
cmds=$(complete_words netext-deploy "" | tr '\n' ' ')
for c in $("$NETEXT_DEPLOY" --help | sed -n 's/^  \([a-z][a-z-]*\) [A-Z].*/\1/p'); do
    case " $cmds " in *" $c "*) ok "--help's command $c is completed" ;; *) not_ok "--help's command $c is not completed" ;; esac
done

lib=/usr/share/bash-completion/bash_completion
if [ -r "$lib" ]; then
    COMPLETION_LIB=$lib
    export COMPLETION_LIB
    run_all bash-completion
else
    echo "    ($lib is missing: not run with the bash-completion package's helpers)"
fi
finish
