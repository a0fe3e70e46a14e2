// Prometheus metrics of the agent (prom-client). Datapath counters are read from the
// pinned maps at scrape time, so they are the kernel's own numbers and outlive agent
// restarts: nf_ep_counters (every packet the classifier decided, per endpoint, direction and
// verdict), nf_rule_stats (policy evaluations per rule) and nf_reason_stats (drops per
// reason). Names of endpoints and rules come from the last applied compile result.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CompileResult } from '../compile/output';
import { NF_REASON_DESC, NfDir, NfReason, NfEpVerdict } from '../wire/abi';
import { encodeU32 } from '../wire/bytes';
import { epCounterKey, sumPerCpuCounters, type Counter as NfCounter } from '../wire/counters';
import { encodeRuleKey } from '../wire/tables';
import type { MapInfo, NativeAddon } from '../datapath/native-api';

export interface MetricsSource {
  addon: NativeAddon;
  maps(): ReadonlyMap<string, MapInfo> | undefined;
  compiled(): Pick<CompileResult, 'rules' | 'endpoints'> | undefined;
}

// Maps without a meaningful fill ratio: arrays are always full, a ring buffer has no entries.
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
const BPF_MAP_TYPE_RINGBUF = 27;
const UNCOUNTED_TYPES = new Set([BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_RINGBUF]);

const DIRECTIONS = [
  ['ingress', NfDir.INGRESS],
  ['egress', NfDir.EGRESS],
] as const;
const VERDICTS = [
  ['allowed', NfEpVerdict.ALLOWED],
  ['denied', NfEpVerdict.DENIED],
] as const;

/** One per-CPU nf_counter of map `name`, summed over the CPUs (zero when absent). */
function readCounter(src: MetricsSource, name: string, key: Buffer): NfCounter | undefined {
  const info = src.maps()?.get(name);
  if (!info) return undefined;
  const v = src.addon.mapLookup(info.fd, key);
  return v ? sumPerCpuCounters(v, src.addon.possibleCpus()) : { packets: 0n, bytes: 0n };
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly reconcileSeconds = new Histogram({
    name: 'netfence_reconcile_duration_seconds',
    help: 'duration of a pass: discovery, compile and apply',
    registers: [this.registry],
    buckets: [0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  });
  readonly compileSeconds = new Histogram({
    name: 'netfence_compile_duration_seconds',
    help: 'compile duration',
    registers: [this.registry],
    buckets: [0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  readonly errors = new Counter({
    name: 'netfence_errors_total',
    help: 'errors by stage (validate: once when the error appears; compile, apply, endpoint, tunnel, names, discover: per pass that meets them)',
    labelNames: ['stage'],
    registers: [this.registry],
  });
  readonly hookRepairs = new Counter({
    name: 'netfence_hook_repairs_total',
    help: 'clsact filters put back after another tool removed them (reason qdisc-deleted, filter-deleted: counted once each is back) or moved ahead of a cls_bpf filter another tool added at their priority (filter-ahead)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly generation = new Gauge({
    name: 'netfence_applied_generation',
    help: 'generation of the applied state',
    registers: [this.registry],
  });
  readonly endpoints = new Gauge({
    name: 'netfence_endpoints',
    help: 'enforced endpoints',
    registers: [this.registry],
  });
  readonly tunnelEnabled = new Gauge({
    name: 'netfence_tunnel_enabled',
    help: 'transparent tunnel on for at least one family (1) or off (0: not configured, or its uplink or every gateway fails)',
    registers: [this.registry],
  });
  readonly tunnelFamilyEnabled = new Gauge({
    name: 'netfence_tunnel_family_enabled',
    help: 'transparent tunnel on (1) or off (0: its gateway or the uplink fails) for each family with a configured gateway',
    labelNames: ['family'],
    registers: [this.registry],
  });
  readonly gatewayAnswering = new Gauge({
    name: 'netfence_tunnel_gateway_answering',
    help: 'a tunnel gateway answers its neighbour probes (1) or not (0)',
    labelNames: ['family', 'gateway'],
    registers: [this.registry],
  });
  readonly flowLogsSuppressed = new Counter({
    name: 'netfence_flow_logs_suppressed_total',
    help: 'drop events received but not logged (flow log rate limit)',
    registers: [this.registry],
  });

  constructor(src: MetricsSource) {
    const endpointCounter = (name: string, help: string, field: keyof NfCounter): Counter =>
      new Counter({
        name,
        help,
        labelNames: ['endpoint', 'pod', 'direction', 'verdict'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const ep of src.compiled()?.endpoints ?? []) {
            if (ep.statsSlot === 0) continue; // no slot was free: not counted
            for (const [direction, dir] of DIRECTIONS)
              for (const [verdict, v] of VERDICTS) {
                const c = readCounter(src, 'nf_ep_counters', epCounterKey(ep.statsSlot, dir, v));
                if (c) this.inc({ endpoint: ep.ifname, pod: ep.pod ?? '', direction, verdict }, Number(c[field]));
              }
          }
        },
      });
    endpointCounter(
      'netfence_endpoint_packets',
      'packets the classifier decided for an endpoint (established flows and replies included; from nf_ep_counters)',
      'packets',
    );
    endpointCounter('netfence_endpoint_bytes', 'bytes of the packets counted by netfence_endpoint_packets', 'bytes');

    new Counter({
      name: 'netfence_rule_hits',
      help: 'policy evaluations a rule decided (first packet of a flow; from nf_rule_stats)',
      labelNames: ['policy', 'rule', 'action', 'table'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const r of src.compiled()?.rules ?? []) {
          const c = readCounter(src, 'nf_rule_stats', encodeRuleKey(r.table, r.index));
          if (c)
            this.inc({ policy: r.policy, rule: r.rule, action: r.action, table: String(r.table) }, Number(c.packets));
        }
      },
    });

    new Counter({
      name: 'netfence_drop_packets',
      help: 'dropped packets by reason (from nf_reason_stats)',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        this.reset();
        NF_REASON_DESC.forEach((reason, i) => {
          // NONE is no drop; RELATED counts passes (ICMP errors of tracked flows)
          const c =
            i !== NfReason.NONE && i !== NfReason.RELATED
              ? readCounter(src, 'nf_reason_stats', encodeU32(i))
              : undefined;
          if (c) this.inc({ reason }, Number(c.packets));
        });
      },
    });

    new Gauge({
      name: 'netfence_map_fill_ratio',
      help: 'entries / max_entries per hash, LRU and LPM map (entries counted by a key walk)',
      labelNames: ['map'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [name, info] of src.maps() ?? []) {
          if (UNCOUNTED_TYPES.has(info.type) || info.maxEntries === 0) continue;
          this.set({ map: name }, src.addon.mapKeys(info.fd).length / info.maxEntries);
        }
      },
    });
  }
}
