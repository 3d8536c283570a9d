"""flotta's actor runtime: actors, messages, supervision, transports, the host.

Import from the submodules (`runtime.actor`, `runtime.node`, `runtime.codec`, ...). This
package file stays empty of imports on purpose: `consensus/` imports `runtime.codec`
and must not pull in trio through it.
"""
