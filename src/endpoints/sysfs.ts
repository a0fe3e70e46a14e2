// SR-IOV VF -> its switchdev representor netdev, through sysfs:
//   <root>/bus/pci/devices/<vf>/physfn          -> the PF device
//   <root>/bus/pci/devices/<pf>/virtfn<N>        -> VF N of that PF
//   <root>/bus/pci/devices/<pf>/net/<pf netdev>/phys_switch_id, phys_port_name "p<k>"
//   <root>/class/net/<rep>/phys_switch_id + phys_port_name "pf<k>vf<N>"
// The root is configurable so tests run against a prepared directory tree.
import fs from 'node:fs';
import path from 'node:path';

function readTrimmed(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function linkBase(file: string): string | undefined {
  try {
    return path.basename(fs.readlinkSync(file));
  } catch {
    return undefined;
  }
}

/** The representor interface name of a VF, or an Error naming the missing piece. */
export function representorOf(sysfsRoot: string, vfPci: string): string | Error {
  const devices = path.join(sysfsRoot, 'bus/pci/devices');
  const pf = linkBase(path.join(devices, vfPci, 'physfn'));
  if (!pf) return new Error(`find representor of VF ${vfPci}: no physfn link (not a VF?)`);
  const pfDir = path.join(devices, pf);
  let vfIndex: number | undefined;
  for (const entry of fs.readdirSync(pfDir)) {
    const m = /^virtfn(\d+)$/.exec(entry);
    if (m && linkBase(path.join(pfDir, entry)) === vfPci) vfIndex = Number(m[1]);
  }
  if (vfIndex === undefined) return new Error(`find representor of VF ${vfPci}: PF ${pf} has no virtfn link to it`);

  const pfNetDir = path.join(pfDir, 'net');
  const pfNetdev = fs.existsSync(pfNetDir) ? fs.readdirSync(pfNetDir)[0] : undefined;
  if (!pfNetdev) return new Error(`find representor of VF ${vfPci}: PF ${pf} has no netdev`);
  const switchId = readTrimmed(path.join(pfNetDir, pfNetdev, 'phys_switch_id'));
  if (!switchId) return new Error(`find representor of VF ${vfPci}: PF ${pf} (${pfNetdev}) is not in switchdev mode`);
  const pfNum = /^p(\d+)$/.exec(readTrimmed(path.join(pfNetDir, pfNetdev, 'phys_port_name')) ?? '')?.[1];

  const classNet = path.join(sysfsRoot, 'class/net');
  for (const dev of fs.readdirSync(classNet).sort()) {
    if (readTrimmed(path.join(classNet, dev, 'phys_switch_id')) !== switchId) continue;
    const m = /^pf(\d+)vf(\d+)$/.exec(readTrimmed(path.join(classNet, dev, 'phys_port_name')) ?? '');
    if (m && Number(m[2]) === vfIndex && (pfNum === undefined || m[1] === pfNum)) return dev;
  }
  return new Error(
    `find representor of VF ${vfPci}: no netdev with switch id ${switchId} and port name pf${pfNum ?? 'N'}vf${vfIndex}`,
  );
}
