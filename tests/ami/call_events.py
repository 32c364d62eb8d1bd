"""Events of a real call (sipp → Sirius → Dial(SIP/callee) → sipp) seen
by panoramisk 1.4, and the actions that read a live call: CoreShowChannels,
Status, Getvar, Setvar. Prints READY once logged in (the test then places
the call) and DONE when both legs have hung up.
Usage: call_events.py PORT. Exits non-zero on the first mismatch."""
import asyncio
import sys

from panoramisk import Manager

CHANNEL_FIELDS = ["Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
                  "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context",
                  "Exten", "Priority", "Uniqueid", "Linkedid"]


def check(cond, what):
    if not cond:
        print("FAILED:", what, flush=True)
        sys.exit(1)
    print("ok:", what.split("\n")[0][:160], flush=True)


async def main(port):
    m = Manager(host="127.0.0.1", port=port, username="admin", secret="admin-secret",
                ping_delay=3600, reconnect_timeout=3600)
    events = []
    bridged = asyncio.Event()
    hungup = asyncio.Event()
    idle_again = asyncio.Event()

    def on_event(manager, e):
        events.append(e)
        if e.event == "BridgeEnter" and e.bridgenumchannels == "2":
            bridged.set()
        if sum(1 for x in events if x.event == "Hangup") >= 2:
            hungup.set()
        ext = [x.statustext for x in events if x.event == "ExtensionStatus"]
        if "InUse" in ext and ext[-1] == "Idle":
            idle_again.set()

    m.register_event("*", on_event)
    await m.connect()
    for _ in range(200):
        if m.authenticated:
            break
        await asyncio.sleep(0.025)
    check(m.authenticated, "login")
    # The fan-out subscribes as the session starts listening: a Ping round
    # trip after the login makes sure it has.
    await m.send_action({"Action": "Ping"})
    check(any(e.event == "FullyBooted" for e in events), "FullyBooted after login")
    print("READY", flush=True)

    await asyncio.wait_for(bridged.wait(), 20)
    r = await m.send_action({"Action": "CoreShowChannels"})
    chans = [e for e in r if e.event == "CoreShowChannel"]
    names = sorted(e.channel for e in chans)
    check(len(chans) == 2 and names[0].startswith("SIP/callee-") and names[1].startswith("SIP/sipp-"),
          "CoreShowChannels during the call: %r" % names)
    check(r[-1].event == "CoreShowChannelsComplete" and r[-1].listitems == "2", "Complete %r" % r[-1])
    caller = [e for e in chans if e.channel.startswith("SIP/sipp-")][0]
    check(caller.application == "Dial" and caller.applicationdata == "SIP/callee,5", "caller app %r" % caller)
    check(caller.bridgeid and caller.channelstatedesc == "Up", "caller bridged %r" % caller)

    r = await m.send_action({"Action": "ExtensionState", "Exten": "300", "Context": "test"})
    check(r.success and r.hint == "SIP/callee" and r.status == "1" and r.statustext == "InUse",
          "ExtensionState during the call %r" % r)

    r = await m.send_action({"Action": "Status", "Channel": caller.channel})
    st = [e for e in r if e.event == "Status"]
    check(len(st) == 1 and st[0].channel == caller.channel and st[0].context == "test", "Status %r" % r)

    r = await m.send_action({"Action": "Setvar", "Channel": caller.channel, "Variable": "AMIVAR", "Value": "from-ami"})
    check(r.success and r.message == "Variable Set", "Setvar %r" % r)
    r = await m.send_action({"Action": "Getvar", "Channel": caller.channel, "Variable": "AMIVAR"})
    check(r.success and r.variable == "AMIVAR" and r.value == "from-ami", "Getvar %r" % r)
    r = await m.send_action({"Action": "Getvar", "Channel": caller.channel, "Variable": "DIALSTATUS"})
    check(r.value == "ANSWER", "Getvar DIALSTATUS %r" % r)
    r = await m.send_action({"Action": "Getvar", "Channel": "SIP/nobody", "Variable": "X"})
    check(r.response == "Error" and r.message == "No such channel", "Getvar unknown channel %r" % r)

    await asyncio.wait_for(hungup.wait(), 20)
    await asyncio.wait_for(idle_again.wait(), 10)
    seen = [e.event for e in events]
    for name in ["Newchannel", "Newstate", "DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave", "Hangup"]:
        check(name in seen, "%s seen (%s)" % (name, ",".join(seen)))
    new = [e for e in events if e.event == "Newchannel"]
    check(len(new) == 2, "one Newchannel per leg: %r" % new)
    for e in new + [x for x in events if x.event == "Hangup"]:
        missing = [f for f in CHANNEL_FIELDS if f not in e]
        check(not missing, "%s %s has Asterisk's channel fields (missing %s)" % (e.event, e.channel, missing))
        check(e.privilege == "call,all", "Privilege %r" % e.privilege)
    begin = [e for e in events if e.event == "DialBegin"][0]
    check(begin.channel.startswith("SIP/sipp-") and begin.destchannel.startswith("SIP/callee-")
          and begin.dialstring == "callee", "DialBegin %r" % begin)
    end = [e for e in events if e.event == "DialEnd"][0]
    check(end.dialstatus == "ANSWER" and end.destchannel == begin.destchannel, "DialEnd %r" % end)
    check(end.destlinkedid == begin.uniqueid, "the callee's Linkedid is the caller's Uniqueid %r" % end)
    enters = [e for e in events if e.event == "BridgeEnter"]
    check(len(enters) == 2 and enters[0].bridgeuniqueid == enters[1].bridgeuniqueid
          and enters[0].bridgetype == "basic" and enters[0].bridgetechnology in ("native_rtp", "simple_bridge"),
          "BridgeEnter %r" % enters)
    leaves = [e for e in events if e.event == "BridgeLeave"]
    check(len(leaves) == 2 and leaves[-1].bridgenumchannels == "0", "BridgeLeave %r" % leaves)
    hang = [e for e in events if e.event == "Hangup"]
    check(all(h.linkedid == begin.uniqueid for h in hang),
          "both legs' Hangup name the call by the caller's Uniqueid %r" % [(h.channel, h.linkedid) for h in hang])
    check(all(h.cause == "16" and h["Cause-txt"] == "Normal Clearing" for h in hang), "Hangup causes %r" % hang)
    ext = [(e.exten, e.statustext) for e in events if e.event == "ExtensionStatus"]
    check(("300", "InUse") in ext and ext[-1] == ("300", "Idle"), "ExtensionStatus events %r" % ext)
    check(all(e.hint == "SIP/callee" and e.context == "test" for e in events if e.event == "ExtensionStatus"),
          "ExtensionStatus fields")
    states = [(e.channel, e.channelstatedesc) for e in events if e.event == "Newstate"]
    check(any(c.startswith("SIP/callee-") and s == "Up" for c, s in states), "callee Newstate Up %r" % states)
    m.close()
    print("DONE", flush=True)


asyncio.run(asyncio.wait_for(main(int(sys.argv[1])), 60))
