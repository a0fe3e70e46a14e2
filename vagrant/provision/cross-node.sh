#!/usr/bin/env bash
# Cross-node probe, run on the last node: connections from this node's pods to the other
# node's pods go through the gateway and must get the verdicts the state directory asks
# for (expectations in /netfence-state/expect.txt: "FROM TO PORT/PROTO allow|deny").
set -euo pipefail
cd /netfence
ip_of() {
  node -e '
    const { loadStateDir } = require("./dist/src/sources/directory");
    const [ns, name] = process.argv[1].split("/");
    const p = loadStateDir("/netfence-state").pods.find((x) => x.namespace === ns && x.name === name);
    if (!p) { console.error("no pod " + process.argv[1]); process.exit(1); }
    console.log(p.ips[0]);
  ' "$1"
}
fail=0
while read -r from to port want; do
  case "$from" in ''|'#'*) continue ;; esac
  ns="pod-${from/\//-}"
  req=$(printf '{"timeoutMs":2000,"targets":[{"id":"p","ip":"%s","port":%d,"protocol":"%s"}]}' "$(ip_of "$to")" "${port%/*}" "${port#*/}")
  got=$(echo "$req" | ip netns exec "$ns" node dist/src/lab/client.js connect | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).results[0].verdict))')
  if [ "$got" = "$want" ]; then echo "ok   $from -> $to $port: $got"; else echo "FAIL $from -> $to $port: got $got, want $want"; fail=1; fi
done < /netfence-state/expect.txt
exit $fail
