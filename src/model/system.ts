// The privileged node rules of NetfenceConfig as one tier-'system' Policy on every node:
// they run before any node policy so a bad policy cannot cut the node off from its API
// server, kubelet or agent. Established/related replies are not rules: conntrack passes
// them (config.privileged.established).
import { parseHostPort } from './config';
import type { Direction, Peer, Policy, PortSpec, Rule } from './rules';
import type { NetfenceConfig } from './types';

export const SYSTEM_POLICY_NAME = 'privileged';

const LOOPBACK: Peer[] = [
  { kind: 'cidr', cidr: '127.0.0.0/8', except: [] },
  { kind: 'cidr', cidr: '::1/128', except: [] },
];

type RuleBody = Pick<Rule, 'peers' | 'ports' | 'name'>;

function numbered(direction: Direction, bodies: RuleBody[]): Rule[] {
  return bodies.map((b, index) => ({ direction, action: 'allow', index, ...b }));
}

export function systemPolicies(config: NetfenceConfig): Policy[] {
  const p = config.privileged;
  if (!p.enabled) return [];
  const tcp = (port: number): PortSpec => ({ protocol: 'TCP', port });
  const loopback: RuleBody[] = p.loopback ? [{ name: 'loopback', peers: LOOPBACK, ports: null }] : [];
  const ingress: RuleBody[] = [
    ...loopback,
    { name: 'kubelet', peers: [{ kind: 'any' }], ports: [tcp(p.kubeletPort)] },
    ...(p.agentPorts.length ? [{ name: 'agent', peers: [{ kind: 'any' } as Peer], ports: p.agentPorts.map(tcp) }] : []),
  ];
  const egress: RuleBody[] = [
    ...loopback,
    ...p.apiServers.map((text): RuleBody => {
      // Validated by the config parser.
      const { ip, port } = parseHostPort(text)!;
      return {
        name: 'api-server',
        peers: [{ kind: 'cidr', cidr: ip.includes(':') ? `${ip}/128` : `${ip}/32`, except: [] }],
        ports: [tcp(port)],
      };
    }),
  ];
  return [
    {
      ref: { kind: 'System', name: SYSTEM_POLICY_NAME },
      tier: 'system',
      priority: 0,
      subject: { kind: 'nodes', nodeSelector: {} },
      isolates: [],
      rules: [...numbered('ingress', ingress), ...numbered('egress', egress)],
    },
  ];
}
