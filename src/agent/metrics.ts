// Prometheus metrics of the agent (prom-client). Datapath counters are read from the
// maps at scrape time: nf_rule_stats (per-CPU, keyed by table+rule) gives per-rule hits
// and, summed over an endpoint's tables, its allowed/denied packets.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CompileResult, PolicyMapName } from '../compile/output';
import { MAP_WRITE_ORDER } from '../compile/output';
import { NF_RULE_DEFAULT, decodeRuleKey, sumPerCpuCounters } from '../datapath/codecs';
import type { MapInfo, NativeAddon } from '../datapath/native-api';

export interface MetricsSource {
  addon: NativeAddon;
  maps(): ReadonlyMap<string, MapInfo> | undefined;
  compiled(): Pick<CompileResult, 'rules' | 'endpoints'> | undefined;
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly reconcileSeconds = new Histogram({ name: 'netfence_reconcile_duration_seconds', help: 'load+compile+apply duration', registers: [this.registry], buckets: [0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
  readonly compileSeconds = new Histogram({ name: 'netfence_compile_duration_seconds', help: 'compile duration', registers: [this.registry], buckets: [0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
  readonly errors = new Counter({ name: 'netfence_errors_total', help: 'errors by stage (load, validate, compile, apply, endpoint, tunnel)', labelNames: ['stage'], registers: [this.registry] });
  readonly generation = new Gauge({ name: 'netfence_applied_generation', help: 'generation of the applied state', registers: [this.registry] });
  readonly endpoints = new Gauge({ name: 'netfence_endpoints', help: 'enforced endpoints', registers: [this.registry] });
  readonly flowLogsSuppressed = new Counter({ name: 'netfence_flow_logs_suppressed_total', help: 'drop events not logged (rate limit)', registers: [this.registry] });

  constructor(src: MetricsSource) {
    const ruleStats = (): Map<string, { packets: number; table: number; index: number }> => {
      const out = new Map<string, { packets: number; table: number; index: number }>();
      const info = src.maps()?.get('nf_rule_stats');
      if (!info) return out;
      const cpus = src.addon.possibleCpus();
      for (const key of src.addon.mapKeys(info.fd)) {
        const v = src.addon.mapLookup(info.fd, key);
        if (!v) continue;
        const k = decodeRuleKey(key);
        out.set(`${k.table}/${k.index}`, { ...k, packets: Number(sumPerCpuCounters(v, cpus).packets) });
      }
      return out;
    };

    new Gauge({
      name: 'netfence_rule_hits',
      help: 'packets decided by a rule (from nf_rule_stats)',
      labelNames: ['policy', 'rule', 'action', 'table'],
      registers: [this.registry],
      collect() {
        this.reset();
        const compiled = src.compiled();
        if (!compiled) return;
        const stats = ruleStats();
        for (const r of compiled.rules) {
          const s = stats.get(`${r.table}/${r.index}`);
          this.set({ policy: r.policy, rule: r.rule, action: r.action, table: String(r.table) }, s?.packets ?? 0);
        }
      },
    });

    new Gauge({
      name: 'netfence_endpoint_packets',
      help: 'packets per endpoint, direction and verdict (summed over the endpoint table rules; shared tables count for each sharer)',
      labelNames: ['endpoint', 'direction', 'verdict'],
      registers: [this.registry],
      collect() {
        this.reset();
        const compiled = src.compiled();
        if (!compiled) return;
        const stats = [...ruleStats().values()];
        const action = new Map(compiled.rules.map((r) => [`${r.table}/${r.index}`, r.action]));
        for (const ep of compiled.endpoints) {
          const name = ep.pod ?? ep.ifname;
          for (const [direction, table] of [['ingress', ep.ingressTable], ['egress', ep.egressTable]] as const) {
            let allowed = 0;
            let denied = 0;
            for (const s of stats) {
              if (s.table !== table) continue;
              const a = s.index === NF_RULE_DEFAULT ? 'allow' : action.get(`${s.table}/${s.index}`);
              if (a === 'allow') allowed += s.packets;
              else if (a === 'deny') denied += s.packets;
            }
            this.set({ endpoint: name, direction, verdict: 'allowed' }, allowed);
            this.set({ endpoint: name, direction, verdict: 'denied' }, denied);
          }
        }
      },
    });

    new Gauge({
      name: 'netfence_map_fill_ratio',
      help: 'entries / max_entries per policy map',
      labelNames: ['map'],
      registers: [this.registry],
      collect() {
        this.reset();
        const maps = src.maps();
        if (!maps) return;
        for (const name of MAP_WRITE_ORDER as readonly PolicyMapName[]) {
          const info = maps.get(name);
          if (info && info.maxEntries > 0) this.set({ map: name }, src.addon.mapKeys(info.fd).length / info.maxEntries);
        }
      },
    });
  }
}
