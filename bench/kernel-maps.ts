// A Reconciler over the maps of the real netfence object loaded in the kernel (unpinned,
// freed by close()), for benchmarks that time writes into kernel maps. Programs are not
// attached: the synthetic endpoints have no interfaces, so every hook counts as attached.
import { DEFAULT_OBJECT, capacityMaxEntries } from '../src/datapath/loader';
import type { Capacity } from '../src/model/types';
import { native } from '../src/datapath/native';
import type { Attacher } from '../src/datapath/attach';
import { NativeMapIO } from '../src/reconcile/native-mapio';
import { Reconciler } from '../src/reconcile/reconciler';

const NO_INTERFACES: Attacher = {
  attached: () => true,
  attach: () => undefined,
  detach: () => undefined,
  list: () => [],
};

/** `capacity` sizes the maps as the agent does (default: the object's own sizes). */
export function kernelReconciler(capacity?: Capacity): { reconciler: Reconciler; close: () => void } {
  const object = native.openObject(DEFAULT_OBJECT, capacity ? { maxEntries: capacityMaxEntries(capacity) } : {});
  const reconciler = new Reconciler(
    new NativeMapIO(native, new Map(object.maps().map((m) => [m.name, m]))),
    NO_INTERFACES,
  );
  return { reconciler, close: () => object.close() };
}
