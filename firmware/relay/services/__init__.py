"""The relay's long-lived I/O parts that are not one client's session: the resolver, upstream proxies and
the uplink monitor, the mesh, fair sharing's waits and files, the clock, the MTProto listeners' shared
state and the mask site, the path finder, fleet reporting, the status snapshot.
"""
