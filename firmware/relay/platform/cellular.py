"""A cellular uplink: a modem on a UART (e.g. an ESP32 + SIM7600 board), AT bring-up,
then network.PPP over the same UART.

Input: uplink.* from config.json. Output: a Cellular driver for platform.keep().
Order: AT until OK, echo off, numeric errors, who the modem is (the family table
in at.py), the SIM (its PIN is sent only when asked, once per boot, and never
again after a refusal: a third wrong PIN locks the SIM), roaming and radio
technology, the PDP context (AT+CGDCONT=1,"IP",apn), registration (+CEREG/+CGREG/
+CREG: 1 home or 5 roaming), ATD*99# until CONNECT, then PPP.
network.PPP has two shapes: extmod/network_ppp_lwip.c (1.24+: connect(security=,
user=, key=), SEC_* constants, the UART's irq(RXIDLE) feeds it) and the ESP32's
older one (active(True), connect(authmode=, username=, password=), AUTH_*).
The UART is polled between asyncio sleeps, never read blocking.
"""

from relay.runtime import api as runtime
from relay.platform.link import LinkError
from relay.proto import at
from relay.platform.wifi import ip_of

_POLL_MS = 20  # between UART polls while waiting for an answer
_LINE_CAP = 1024  # an AT answer longer than this is garbage (a +COPS=? list is ~300 bytes)


class ATError(Exception):
    def __init__(self, command, line, code):
        super().__init__("%s: %s" % (command, at.cme_sentence(code) if line.startswith("+CME") else line))
        self.code = code
        self.line = line


class ATPort:
    """One command at a time over a UART-like stream (any(), read(n), write(b))."""

    def __init__(self, uart):
        self.uart = uart
        self.buf = b""
        self.urcs = []  # the last few unsolicited codes, for the status page and debugging

    def _take_lines(self):
        u = self.uart
        n = u.any()
        if n:
            data = u.read(n)
            if data:
                self.buf += data
        if b"\n" not in self.buf:
            if len(self.buf) > _LINE_CAP:
                self.buf = b""
            return ()
        parts = self.buf.split(b"\n")
        self.buf = parts[-1]
        out = []
        for p in parts[:-1]:
            line = p.replace(b"\r", b" ").strip()
            if line:
                out.append(line.decode("latin-1") if hasattr(line, "decode") else str(line))
        return out

    def drain(self):
        self._take_lines()
        self.buf = b""

    async def command(self, command, timeout_ms=5000):
        """Lines of the answer on OK/CONNECT; raises ATError or LinkError (no answer)."""
        self.drain()
        self.uart.write(command.encode() + b"\r")
        prefix = at.expected_prefix(command)
        lines = []
        t0 = runtime.now_ms()
        while True:
            for line in self._take_lines():
                if line.upper() == command.upper():
                    continue  # echo
                fin = at.parse_final(line)
                if fin is not None:
                    if fin[0] == "ok":
                        return lines
                    raise ATError(command, line, fin[1])
                if at.is_urc(line, prefix):
                    self.urcs = (self.urcs + [line])[-4:]
                    continue
                lines.append(line)
            if runtime.ms_since(t0) > timeout_ms:
                raise LinkError("modem: no answer to %s within %d s" % (command, timeout_ms // 1000))
            await runtime.sleep_ms(_POLL_MS)

    async def try_command(self, command, timeout_ms=5000):
        try:
            return await self.command(command, timeout_ms)
        except ATError:
            return None


def first(lines, prefix):
    for line in lines or ():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return None


class Cellular:
    def __init__(self, network, u, link, log):
        import machine

        self.network = network
        self.u = u
        self.link = link
        self.log = log
        kw = {"baudrate": u.baud, "rxbuf": 1024}  # rxbuf: PPP frames arrive whole at 115200 baud
        if u.tx >= 0:
            kw["tx"] = machine.Pin(u.tx)
        if u.rx >= 0:
            kw["rx"] = machine.Pin(u.rx)
        self.uart = machine.UART(u.uart, **kw)
        self.port = ATPort(self.uart)
        self.family = at.GENERIC
        self.pin_sent = False  # once per boot, whatever happens next
        self.ppp = None
        self.connect_ms = int(u.connect_timeout * 1000)
        self.register_ms = int(u.register_timeout * 1000)

    async def up(self):
        p = self.port
        await self._sync()
        await p.command("ATE0")
        await p.try_command("AT+CMEE=1")
        maker = (await p.try_command("AT+CGMI")) or [""]
        model = (await p.try_command("AT+CGMM")) or [""]
        self.family = at.detect(maker[0], model[0])
        self.link.info["modem"] = self.family["name"]
        await self._sim()
        await self._radio()
        try:
            await p.command('AT+CGDCONT=1,"IP","%s"' % self.u.apn)
        except ATError as e:
            raise LinkError("modem refused the APN %s: %s" % (repr(self.u.apn), e))
        await self._register()
        await self._network_time()
        await self._dial()
        await self._ppp()

    async def _sync(self):
        for _ in range(3):  # keep() tries again later: a modem can take 20 s to boot
            try:
                await self.port.command("AT", 1000)
                return
            except (LinkError, ATError):
                await runtime.sleep_ms(200)
        raise LinkError("modem: no answer to AT on UART %d (wiring, uplink.baud, or the modem is off)" % self.u.uart)

    async def _cpin(self):
        for _ in range(10):
            try:
                return first(await self.port.command("AT+CPIN?"), "+CPIN:") or ""
            except ATError as e:
                if e.code == 10:
                    raise LinkError("no SIM: the modem reports no SIM card inserted")
                if e.code != 14:
                    raise LinkError("SIM: %s" % e)
            await runtime.sleep_ms(1000)  # SIM busy: still reading its files
        raise LinkError("SIM: still busy after 10 s")

    async def _sim(self):
        state = await self._cpin()
        if state == "READY":
            return
        if state == "SIM PUK":
            raise LinkError("the SIM is locked behind its PUK (three wrong PINs); unlock it in a phone", True)
        if state != "SIM PIN":
            raise LinkError("SIM: unexpected state %s" % repr(state))
        if not self.u.pin:
            raise LinkError("the SIM asks for its PIN: set uplink.pin", True)
        if self.pin_sent:
            raise LinkError("the SIM asks for its PIN again after it was sent once; not sending it twice", True)
        self.pin_sent = True
        try:
            await self.port.command('AT+CPIN="%s"' % self.u.pin, 10000)
        except ATError as e:
            raise LinkError("the SIM refused uplink.pin (%s); not retried: a third wrong PIN locks it" % e, True)
        for _ in range(20):
            if await self._cpin() == "READY":
                return
            await runtime.sleep_ms(500)
        raise LinkError("SIM: PIN accepted but the SIM is not ready")

    async def _radio(self):
        fam, u, p = self.family, self.u, self.port
        if fam["roaming"]:
            await p.try_command(fam["roaming"][u.roaming], 10000)
        if u.rat != "auto" and fam["rat"]:
            await p.try_command(fam["rat"][u.rat], 10000)
        if u.operator != "auto":
            cmd = 'AT+COPS=1,2,"%s"' % u.operator
            if u.rat in at.RAT_ACT:
                cmd += ",%d" % at.RAT_ACT[u.rat]
            try:
                await p.command(cmd, 200000)  # manual selection waits for the network (manuals: up to 180 s)
            except ATError as e:
                raise LinkError("operator %s: %s" % (u.operator, e))

    async def _register(self):
        p = self.port
        t0 = runtime.now_ms()
        last = None
        while True:
            for cmd, prefix in (("AT+CEREG?", "+CEREG:"), ("AT+CGREG?", "+CGREG:"), ("AT+CREG?", "+CREG:")):
                r = await p.try_command(cmd)
                stat = at.reg_stat(first(r, prefix) or "")
                if stat in (1, 5):
                    self.link.info["registration"] = at.REG_NAMES[stat]
                    csq = first(await p.try_command("AT+CSQ"), "+CSQ:")
                    if csq:
                        self.link.info["signal_dbm"] = at.csq_dbm(csq)
                        self.link.signal_ms = runtime.now_ms()  # PPP then holds the UART: no newer reading
                    return
                if stat is not None:
                    last = stat
            if runtime.ms_since(t0) > self.register_ms:
                why = at.REG_NAMES.get(last, "no answer")
                hint = "; a foreign SIM needs uplink.roaming = true" if last == 3 and not self.u.roaming else ""
                raise LinkError("not registered within %d s (%s)%s" % (self.register_ms // 1000, why, hint))
            await runtime.sleep_ms(1000)

    async def _network_time(self):
        """The modem's clock once registered: set from the network (NITZ) on most modems. Fake-TLS needs
        a sane clock and a board has none of its own; relay.clock takes it from link.time."""
        try:
            t = at.cclk_unix(first(await self.port.try_command("AT+CCLK?"), "+CCLK:") or "")
        except LinkError:
            return  # no answer: the time is a nicety, the uplink is not
        if t is not None:
            self.link.time = (t, runtime.now_ms())
            self.link.info["network_time"] = t

    async def _dial(self):
        try:
            await self.port.command("ATD*99#", self.connect_ms)
        except ATError as e:
            raise LinkError("dial ATD*99#: %s" % e)

    async def _ppp(self):
        n, u = self.network, self.u
        ppp = n.PPP(self.uart)
        self.ppp = ppp
        if hasattr(ppp, "SEC_NONE"):  # extmod/network_ppp_lwip.c, 1.24+
            if u.user:
                ppp.connect(security=ppp.SEC_PAP, user=u.user, key=u.password)
            else:
                ppp.connect()
        else:  # ports/esp32 before 1.24
            ppp.active(True)
            if u.user:
                ppp.connect(authmode=ppp.AUTH_PAP, username=u.user, password=u.password)
            else:
                ppp.connect()
        t0 = runtime.now_ms()
        while not ppp.isconnected():
            if runtime.ms_since(t0) > self.connect_ms:
                raise LinkError("PPP: no link within %d s after CONNECT" % (self.connect_ms // 1000))
            await runtime.sleep_ms(250)
        self.link.info["ip"] = ip_of(ppp)

    async def alive(self):
        return self.ppp is not None and self.ppp.isconnected()

    async def down(self):
        self.link.info.pop("ip", None)
        ppp, self.ppp = self.ppp, None
        if ppp is not None:
            try:
                if hasattr(ppp, "SEC_NONE"):
                    ppp.disconnect()
                else:
                    ppp.active(False)
            except OSError:
                pass
        # Back to command mode: one second of silence, +++, one second of silence, hang up.
        await runtime.sleep_ms(1100)
        self.uart.write(b"+++")
        await runtime.sleep_ms(1100)
        self.port.drain()
        await self.port.try_command("ATH", 3000)
