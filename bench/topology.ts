// The network benchmark's topology: two pod namespaces joined to a node namespace by
// veths, routing in the node namespace. Everything lives in namespaces named after
// this process; nothing touches the root namespace.
//
//   nfb-a-PID  eth0 10.244.1.2/24 ---- ha 10.244.1.1/24  nfb-node-PID  hb 10.244.2.1/24 ---- eth0 10.244.2.2/24  nfb-b-PID
//              (+ 10.244.1.3/24)
import { nsRun, run } from '../src/lab/exec';
import { runSyncQuiet } from './exec';

export const CLIENT_IP = '10.244.1.2';
export const SERVER_IP = '10.244.2.2';
/** A second address of the client namespace that no policy allows: a variant that
 *  isolates the server must drop it. */
export const OUTSIDER_IP = '10.244.1.3';

export class Topology {
  readonly node: string;
  readonly client: string;
  readonly server: string;
  readonly clientVeth = 'ha';
  readonly serverVeth = 'hb';

  constructor(tag = String(process.pid)) {
    this.node = `nfb-node-${tag}`;
    this.client = `nfb-a-${tag}`;
    this.server = `nfb-b-${tag}`;
  }

  async up(): Promise<void> {
    for (const ns of [this.node, this.client, this.server]) {
      await run(['ip', 'netns', 'add', ns]);
      await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    const pods = [
      { ns: this.client, veth: this.clientVeth, ip: CLIENT_IP, gw: '10.244.1.1' },
      { ns: this.server, veth: this.serverVeth, ip: SERVER_IP, gw: '10.244.2.1' },
    ];
    for (const p of pods) {
      await run(['ip', '-n', this.node, 'link', 'add', p.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.ns]);
      await run(['ip', '-n', this.node, 'addr', 'add', `${p.gw}/24`, 'dev', p.veth]);
      await run(['ip', '-n', this.node, 'link', 'set', p.veth, 'up']);
      await run(['ip', '-n', p.ns, 'addr', 'add', `${p.ip}/24`, 'dev', 'eth0']);
      await run(['ip', '-n', p.ns, 'link', 'set', 'eth0', 'up']);
      await run(['ip', '-n', p.ns, 'route', 'add', 'default', 'via', p.gw]);
    }
    await run(['ip', '-n', this.client, 'addr', 'add', `${OUTSIDER_IP}/24`, 'dev', 'eth0']);
    await nsRun(this.node, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    // The client opens tens of thousands of connections (closed with RST, so no
    // TIME_WAIT): the whole ephemeral range, the same in every measurement.
    await nsRun(this.client, ['sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535']);
  }

  /** The same, synchronously, for an interrupted run. */
  downSync(): void {
    for (const ns of [this.client, this.server, this.node]) runSyncQuiet('ip', ['netns', 'del', ns]);
  }

  /** Remove the namespaces (and with them the veths); errors ignored so it always runs to the end. */
  async down(): Promise<void> {
    for (const ns of [this.client, this.server, this.node])
      await run(['ip', 'netns', 'del', ns]).catch(() => undefined);
  }
}
