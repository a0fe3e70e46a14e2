// The hooks the agent's passes attached, remembered so that a pass asks the kernel only
// about interfaces it has not seen: a tc query is a netlink or bpffs round trip per
// endpoint and hook, and under pod churn the kernel's rtnl lock (taken by every namespace
// teardown) makes each one cost milliseconds, O(endpoints) of them per pass. Like the
// Reconciler's known map content, this is forgotten by verify() (the periodic resync asks
// the kernel again and repairs hooks removed behind the agent's back) and on any failure,
// and one hook by forget() when the link watcher saw it go (agent/hook-repairs).
import type { TcDirection } from '../datapath/native-api';
import type { Attacher, EndpointRef } from '../datapath/attach';

const hookKey = (ep: EndpointRef, dir: TcDirection): string => `${ep.ifindex}\0${ep.ifname}\0${dir}`;

export class KnownHooks implements Attacher {
  private readonly known = new Set<string>();

  constructor(private readonly inner: Attacher) {}

  /** The next passes ask the kernel again. */
  verify(): void {
    this.known.clear();
  }

  /** The next pass asks the kernel about this hook again (it was removed behind our back). */
  forget(ep: EndpointRef, dir: TcDirection): void {
    this.known.delete(hookKey(ep, dir));
  }

  attached(ep: EndpointRef, dir: TcDirection): boolean {
    const key = hookKey(ep, dir);
    if (this.known.has(key)) return true;
    const yes = this.inner.attached(ep, dir);
    if (yes) this.known.add(key);
    return yes;
  }

  attach(ep: EndpointRef, dir: TcDirection): void {
    const key = hookKey(ep, dir);
    this.known.delete(key);
    this.inner.attach(ep, dir);
    this.known.add(key);
  }

  detach(ep: EndpointRef, dir: TcDirection): void {
    this.known.delete(hookKey(ep, dir));
    this.inner.detach(ep, dir);
  }

  list(ifindexes?: ReadonlyMap<string, number>): EndpointRef[] {
    return this.inner.list(ifindexes);
  }
}
