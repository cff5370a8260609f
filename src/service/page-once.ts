/**
 * A list call's page, made once per store result. A first page of ListContexts or
 * ListParticipants comes from a kept object (list-pages.ts, the read cache's L1), the same object
 * call after call until a revision: its slice to the page size and its next-page token were made
 * anew on every call, and each call's page being a new object, the transport mapped and encoded
 * it anew too. Made once, the page is the same object as long as its result is, and the transport
 * keeps its answer and that answer's bytes beside it (transport/once-per-object.ts).
 *
 * A page depends on its result, the page size and the query the token is bound to; a kept result
 * is kept per query and page size, so it always comes with the same ones. The page size is
 * checked anyway: a result handed to two page sizes gets the page of the one asked.
 */
const pages = new WeakMap<object, { readonly limit: number; readonly page: unknown }>();

export function pageOnce<R extends object, P>(result: R, limit: number, make: (result: R) => P): P {
  const made = pages.get(result);
  if (made !== undefined && made.limit === limit) return made.page as P;
  const page = make(result);
  pages.set(result, { limit, page });
  return page;
}
