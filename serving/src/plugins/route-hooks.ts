/**
 * A route's own hooks of one kind, as an array (route options take one hook or several). Plugins
 * that act on some routes only add their hook to those routes from an onRoute hook, which costs
 * nothing on the others and reads the route's config once rather than per request.
 */
export const hooksOf = <H>(hooks: H | H[] | undefined): H[] =>
  hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];
