/**
 * `make`, run once per argument object: the answer is kept beside the object (a WeakMap) and goes
 * with it. For messages and domain objects that are never changed once made — a read cache's
 * participant or state, a revision fanned out to many streams — which are mapped or encoded on
 * every call that carries them otherwise.
 */
export function oncePerObject<K extends object, V>(make: (key: K) => V): (key: K) => V {
  const made = new WeakMap<K, V>();
  return (key) => {
    let value = made.get(key);
    if (value === undefined) {
      value = make(key);
      made.set(key, value);
    }
    return value;
  };
}
