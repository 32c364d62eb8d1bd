"""panoramisk 1.4 against Sirius's AMI: plain login (Manager's own
login), Ping, Command, SIPpeers, SIPshowpeer, then an MD5 login
(Challenge + Login with a Key) and a refused one on raw sessions.
Usage: panoramisk_session.py PORT. Exits non-zero on the first mismatch."""
import asyncio
import hashlib
import sys

from panoramisk import Manager


def check(cond, what):
    if not cond:
        print("FAILED:", what, flush=True)
        sys.exit(1)
    print("ok:", what.split("\n")[0][:120], flush=True)


async def logged_in(port, **kw):
    m = Manager(host="127.0.0.1", port=port, ping_delay=3600, reconnect_timeout=3600, **kw)
    await m.connect()
    for _ in range(200):
        if "username" not in kw or m.authenticated:
            break
        await asyncio.sleep(0.025)
    return m


async def main(port):
    m = await logged_in(port, username="admin", secret="admin-secret")
    check(m.authenticated, "plain login accepted")
    check(m.protocol.version == "5.0.2", "banner version %r" % m.protocol.version)

    r = await m.send_action({"Action": "Ping"})
    check(r.success and r.ping == "Pong" and r.timestamp, "Ping: %r" % r)

    r = await m.send_command("core show version")
    out = r.output if isinstance(r.output, list) else [r.output]
    check(r.success and r.message == "Command output follows", "Command response %r" % r)
    check(out[0].startswith("Sirius "), "core show version over AMI: %r" % out)

    r = await m.send_command("core show help core show")
    check(isinstance(r.output, list) and len(r.output) > 2, "several Output lines: %r" % r)

    r = await m.send_action({"Action": "SIPpeers"})
    names = sorted(e.objectname for e in r if e.event == "PeerEntry")
    check(r[0].eventlist == "start" and r[-1].event == "PeerlistComplete", "SIPpeers list: %r" % r)
    check(names == ["alice", "callee", "sipp"], "SIPpeers names %r" % names)
    check(r[-1].listitems == "3", "ListItems %r" % r[-1])
    callee = [e for e in r if e.event == "PeerEntry" and e.objectname == "callee"][0]
    check(callee.ipaddress == "127.0.0.1" and callee.dynamic == "no", "PeerEntry %r" % callee)

    r = await m.send_action({"Action": "SIPshowpeer", "Peer": "sipp"})
    check(r.success and r.objectname == "sipp" and r.context == "test", "SIPshowpeer %r" % r)
    check(r["Call-limit"] == "1" and r["SIP-AuthInsecure"] == "port,invite", "SIPshowpeer fields %r" % r)
    r = await m.send_action({"Action": "SIPshowpeer", "Peer": "nobody"})
    check(r.response == "Error", "unknown peer %r" % r)

    r = await m.send_action({"Action": "CoreSettings"})
    check(r.success and r.amiversion == "5.0.2" and r.asteriskversion.startswith("Sirius "), "CoreSettings %r" % r)
    r = await m.send_action({"Action": "CoreStatus"})
    check(r.success and r.corecurrentcalls == "0" and len(r.corestartupdate) == 10, "CoreStatus %r" % r)

    r = await m.send_action({"Action": "Reload", "Module": "chan_sip"})
    check(r.success and r.message == "Module Reloaded", "Reload %r" % r)

    r = await m.send_action({"Action": "Frobnicate"})
    check(r.response == "Error" and r.message.startswith("Invalid/unknown command"), "unknown action %r" % r)
    m.close()

    # MD5: Challenge, then Login with Key = md5(challenge + secret).
    raw = await logged_in(port)
    r = await raw.send_action({"Action": "Challenge", "AuthType": "MD5"})
    check(r.success and r.challenge, "Challenge %r" % r)
    key = hashlib.md5((r.challenge + "admin-secret").encode()).hexdigest()
    r = await raw.send_action({"Action": "Login", "AuthType": "MD5", "Username": "admin", "Key": key})
    check(r.success and r.message == "Authentication accepted", "MD5 login %r" % r)
    r = await raw.send_action({"Action": "Ping"})
    check(r.success, "Ping after MD5 login")
    raw.close()

    # A wrong MD5 key is refused (a ChallengeResponseFailed security event).
    raw = await logged_in(port)
    r = await raw.send_action({"Action": "Challenge", "AuthType": "MD5"})
    r = await raw.send_action({"Action": "Login", "AuthType": "MD5", "Username": "admin", "Key": "0" * 32})
    check(r.response == "Error" and r.message == "Authentication failed", "wrong MD5 key %r" % r)
    raw.close()
    print("DONE", flush=True)


asyncio.run(asyncio.wait_for(main(int(sys.argv[1])), 60))
