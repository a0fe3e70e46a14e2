#!/usr/bin/env bash
# Probes from this node: each line of stdin ("FROM TO PORT/PROTO", FROM a pod of this node
# or node/THIS_NODE, TO a pod or node/NAME) is one real connection; prints
# "FROM TO PORT/PROTO VERDICT" with the verdict the lab client saw (allow, deny or error).
set -euo pipefail
cd /netfence
node -e '
  const { execFileSync } = require("node:child_process");
  const { loadStateDir } = require("./dist/src/sources/directory");
  const s = loadStateDir("/netfence/vagrant/state");
  const ipOf = (ref) => {
    const [kind, name] = ref.split("/");
    const x = kind === "node" ? s.nodes.find((n) => n.name === name)?.addresses[0]
      : s.pods.find((p) => p.namespace === kind && p.name === name)?.ips[0];
    if (!x) throw new Error("probe: no pod or node " + ref);
    return x;
  };
  const lines = require("node:fs").readFileSync(0, "utf8").split("\n").filter((l) => l.trim());
  for (const line of lines) {
    const [from, to, port] = line.trim().split(/\s+/);
    const [num, protocol] = port.split("/");
    const req = JSON.stringify({ timeoutMs: 3000, targets: [{ id: "p", ip: ipOf(to), port: Number(num), protocol }] });
    const where = from.startsWith("node/") ? [] : ["ip", "netns", "exec", "pod-" + from.replace("/", "-")];
    const argv = [...where, process.execPath, "dist/src/lab/client.js", "connect"];
    const out = execFileSync(argv[0], argv.slice(1), { input: req, encoding: "utf8" });
    console.log(from, to, port, JSON.parse(out).results[0].verdict);
  }
'
