"""The `flotta` command line and a small Python client for the Docker Engine API.

`actors.client.api` is the reusable HTTP layer (plain sockets, standard library only);
`actors.client.main` is the command line. Nothing here imports trio, attrs, msgpack or
other heavy modules, so that `flotta` starts in tens of milliseconds.
"""
