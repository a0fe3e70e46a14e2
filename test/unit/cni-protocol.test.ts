// The agent socket's request decoding: the CNI network name is optional (netfence-cni
// before it did not send it), and when present must be a non-empty string; a forwarded
// invocation carries only CNI_* variables, all strings.
import test from 'ava';
import { decodeRequest } from '../../src/cni/protocol';

const add = {
  op: 'add',
  containerId: 'c1',
  netns: '/run/netns/c1',
  ifName: 'net1',
  podNamespace: 'demo',
  podName: 'web',
};

test('a request names its network; one without (an older plugin) still decodes', (t) => {
  t.deepEqual(decodeRequest(JSON.stringify({ ...add, network: 'blue' })), { ...add, op: 'add', network: 'blue' });
  const old = decodeRequest(JSON.stringify(add));
  t.deepEqual(old, { ...add, op: 'add' });
  t.false('network' in old);
});

test('a network that is not a non-empty string is refused naming the field', (t) => {
  t.throws(() => decodeRequest(JSON.stringify({ ...add, network: 7 })), {
    message: 'decode agent request: network: must be a string',
  });
  t.throws(() => decodeRequest(JSON.stringify({ ...add, network: '' })), {
    message: 'decode agent request: network: must not be empty',
  });
});

test('a forwarded invocation carries CNI_* strings and stdin; anything else is refused naming the field', (t) => {
  const cni = { op: 'cni', env: { CNI_COMMAND: 'VERSION' }, stdin: '' };
  t.deepEqual(decodeRequest(JSON.stringify(cni)), cni);
  t.throws(() => decodeRequest(JSON.stringify({ ...cni, env: ['CNI_COMMAND'] })), {
    message: 'decode agent request: env: must be an object',
  });
  t.throws(() => decodeRequest(JSON.stringify({ ...cni, env: { PATH: '/bin' } })), {
    message: 'decode agent request: env: PATH: only CNI_* variables are forwarded',
  });
  t.throws(() => decodeRequest(JSON.stringify({ ...cni, env: { CNI_COMMAND: 1 } })), {
    message: 'decode agent request: env: CNI_COMMAND: must be a string',
  });
  t.throws(() => decodeRequest(JSON.stringify({ ...cni, stdin: {} })), {
    message: 'decode agent request: stdin: must be a string',
  });
});
