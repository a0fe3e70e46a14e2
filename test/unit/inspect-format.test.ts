// `netfence inspect`'s text form: an endpoint on the reserved deny-all table reads as such
// (it has no table of rules to list).
import test from 'ava';
import { formatReport, type InspectReport } from '../../src/cli/inspect';
import { NF_TABLE_DENY } from '../../src/wire/abi';

test('an endpoint on NF_TABLE_DENY reads "deny all: over capacity"; other tables print their id and chunks', (t) => {
  const endpoint = {
    ifindex: 6,
    ifname: 'veth6',
    pod: 'ns/p6',
    id: 1006,
    ingressChunks: 1,
    flags: ['pod'],
    revision: 9,
  };
  const report: InspectReport = {
    bpffsRoot: '/sys/fs/bpf/x',
    endpoints: [
      { ...endpoint, ingressTable: NF_TABLE_DENY, egressTable: 5, egressChunks: 2 },
      { ...endpoint, ifindex: 7, ifname: 'veth7', ingressTable: 5, egressTable: 0, ingressChunks: 2, egressChunks: 0 },
    ],
    tables: [],
    identities: [],
    localAddresses: [],
    serviceCIDRs: [],
  };
  const lines = formatReport(report).split('\n');
  t.true(
    lines.includes(
      `  6 veth6  id=1006 ingress=${NF_TABLE_DENY} (deny all: over capacity) egress=5 (2 chunks) rev=9 [pod] ns/p6`,
    ),
    lines.join('\n'),
  );
  t.true(lines.includes('  7 veth7  id=1006 ingress=5 (2 chunks) egress=0 rev=9 [pod] ns/p6'), lines.join('\n'));
});
