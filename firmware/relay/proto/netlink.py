"""Linux rtnetlink address messages, sans-I/O: the request that lists every interface address, and
the parse of what the kernel sends back or announces (RTM_NEWADDR / RTM_DELADDR).

Input: bytes from a NETLINK_ROUTE socket (runtime.netlink_route). Output: ("add" | "del",
interface index, address bytes), ("done", 0, None) at the end of a dump, ("error", errno, None).
Layouts from linux/netlink.h, linux/rtnetlink.h and linux/if_addr.h; the kernel writes them in
the host's byte order, so struct's native order reads them. No socket here.
"""

import struct

from relay.proto.const import const

GROUPS = const(0x10 | 0x100)  # RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR: every address change
_NLMSG_ERROR = const(2)
_NLMSG_DONE = const(3)
_RTM_NEWADDR = const(20)
_RTM_DELADDR = const(21)
_RTM_GETADDR = const(22)
_NLM_F_REQUEST = const(1)
_NLM_F_DUMP = const(0x300)
_IFA_ADDRESS = const(1)
_IFA_LOCAL = const(2)
_HDR = "IHHII"  # nlmsghdr: length, type, flags, sequence, port id
_HDR_LEN = const(16)
_IFA = "BBBBI"  # ifaddrmsg: family, prefix length, flags, scope, interface index
_IFA_LEN = const(8)


def dump_request(seq):
    """RTM_GETADDR for every family: the kernel answers with one RTM_NEWADDR per address, then DONE."""
    return struct.pack(_HDR, _HDR_LEN + _IFA_LEN, _RTM_GETADDR, _NLM_F_REQUEST | _NLM_F_DUMP, seq, 0) + \
        struct.pack(_IFA, 0, 0, 0, 0, 0)


def _align(n):
    return (n + 3) & ~3


def parse(data):
    """Every message in one datagram -> [(event, index, address)]; anything cut short ends the list."""
    out = []
    i = 0
    n = len(data)
    while i + _HDR_LEN <= n:
        length, mtype = struct.unpack_from("IH", data, i)
        if length < _HDR_LEN or i + length > n:
            break
        if mtype == _NLMSG_DONE:
            out.append(("done", 0, None))
        elif mtype == _NLMSG_ERROR:
            err = struct.unpack_from("i", data, i + _HDR_LEN)[0] if length >= _HDR_LEN + 4 else 0
            if err:
                out.append(("error", -err, None))
        elif (mtype == _RTM_NEWADDR or mtype == _RTM_DELADDR) and length >= _HDR_LEN + _IFA_LEN:
            ip = _address(data, i + _HDR_LEN + _IFA_LEN, i + length)
            if ip is not None:
                index = struct.unpack_from(_IFA, data, i + _HDR_LEN)[4]
                out.append(("add" if mtype == _RTM_NEWADDR else "del", index, ip))
        i += _align(length)
    return out


def _address(data, i, end):
    """The interface's own address among the attributes: IFA_LOCAL (on a point-to-point link such as
    PPP, IFA_ADDRESS is the far end's), else IFA_ADDRESS."""
    local = address = None
    while i + 4 <= end:
        alen, atype = struct.unpack_from("HH", data, i)
        if alen < 4 or i + alen > end:
            break
        value = bytes(data[i + 4 : i + alen])
        if len(value) in (4, 16):
            if atype == _IFA_LOCAL:
                local = value
            elif atype == _IFA_ADDRESS:
                address = value
        i += _align(alen)
    return local if local is not None else address
