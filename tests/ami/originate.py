"""Originate (Async: yes) with panoramisk 1.4: `Originate successfully
queued`, then the OriginateResponse event with the same ActionID once the
callee (a sipp UAS) answers; a Redirect to another extension; Hangup of the
new channel and its Hangup event; a refused Originate.
Usage: originate.py PORT. Exits non-zero on the first mismatch."""
import asyncio
import sys

from panoramisk import Manager


def check(cond, what):
    if not cond:
        print("FAILED:", what, flush=True)
        sys.exit(1)
    print("ok:", what.split("\n")[0][:160], flush=True)


async def main(port):
    m = Manager(host="127.0.0.1", port=port, username="admin", secret="admin-secret",
                ping_delay=3600, reconnect_timeout=3600)
    hangups = []
    gone = asyncio.Event()

    def on_hangup(manager, e):
        hangups.append(e)
        gone.set()

    m.register_event("Hangup", on_hangup)
    await m.connect()
    for _ in range(200):
        if m.authenticated:
            break
        await asyncio.sleep(0.025)
    check(m.authenticated, "login")
    await m.send_action({"Action": "Ping"})

    r = await asyncio.wait_for(m.send_action({
        "Action": "Originate", "Channel": "SIP/callee", "Context": "test", "Exten": "100",
        "Priority": "1", "Async": "true", "CallerID": "\"AMI\" <900>", "Variable": "FROMAMI=yes"}), 30)
    check(isinstance(r, list) and len(r) == 2, "response then event: %r" % r)
    queued, resp = r
    check(queued.response == "Success" and queued.message == "Originate successfully queued", "queued %r" % queued)
    check(resp.event == "OriginateResponse" and resp.response == "Success" and resp.reason == "4",
          "OriginateResponse %r" % resp)
    check(resp.actionid == queued.actionid, "same ActionID")
    check(resp.channel.startswith("SIP/callee-") and resp.context == "test" and resp.exten == "100",
          "OriginateResponse fields %r" % resp)
    check(resp.calleridnum == "900" and resp.calleridname == "AMI", "caller id %r" % resp)

    r = await m.send_action({"Action": "Getvar", "Channel": resp.channel, "Variable": "FROMAMI"})
    check(r.value == "yes", "Variable set on the originated channel %r" % r)

    # Redirect: the answered call leaves 100 (Wait) for 101 (another Wait).
    r = await m.send_action({"Action": "Redirect", "Channel": resp.channel, "Context": "test",
                             "Exten": "101", "Priority": "1"})
    check(r.success and r.message == "Redirect successful", "Redirect %r" % r)
    r = await m.send_action({"Action": "Getvar", "Channel": resp.channel, "Variable": "EXTEN"})
    check(r.value == "101", "redirected to 101: %r" % r)
    r = await m.send_action({"Action": "Redirect", "Channel": resp.channel, "Exten": "999"})
    check(r.response == "Error" and r.message == "Extension does not exist.", "Redirect nowhere %r" % r)

    r = await m.send_action({"Action": "Hangup", "Channel": resp.channel})
    check(r.success and r.message == "Channel Hungup", "Hangup %r" % r)
    await asyncio.wait_for(gone.wait(), 10)
    check(hangups[0].channel == resp.channel and hangups[0].uniqueid == resp.uniqueid, "Hangup event %r" % hangups[0])

    # A refused originate: an unknown technology.
    r = await asyncio.wait_for(m.send_action({
        "Action": "Originate", "Channel": "Nope/x", "Application": "Wait", "Data": "1", "Async": "yes"}), 10)
    check(r[0].success and r[1].event == "OriginateResponse" and r[1].response == "Failure",
          "refused originate %r" % r)
    m.close()
    print("DONE", flush=True)


asyncio.run(asyncio.wait_for(main(int(sys.argv[1])), 60))
