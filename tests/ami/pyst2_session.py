"""pyst2 0.5.1 (asterisk.manager) against Sirius's AMI: connect (the
banner), login, ping, command, status, an MD5 login, and refused logins
(wrong password, unknown user) raising ManagerAuthException.
Usage: pyst2_session.py PORT. Exits non-zero on the first mismatch."""
import hashlib
import sys

import asterisk.manager


def check(cond, what):
    if not cond:
        print("FAILED:", what, flush=True)
        sys.exit(1)
    print("ok:", what.split("\n")[0][:120], flush=True)


def connect(port):
    m = asterisk.manager.Manager()
    m.connect("127.0.0.1", port)
    return m


def main(port):
    m = connect(port)
    check(m.title == "Asterisk Call Manager" and m.version == "5.0.2", "banner %r %r" % (m.title, m.version))
    r = m.login("admin", "admin-secret")
    check(r.get_header("Response") == "Success", "login %s" % r.response)
    check(r.get_header("Message") == "Authentication accepted", "login message")
    r = m.ping()
    check(r.get_header("Ping") == "Pong", "ping %s" % r.response)
    r = m.command("core show version")
    raw = "".join(r.response)
    check(r.get_header("Response") == "Success" and "Output: Sirius " in raw, "command %r" % raw)
    r = m.send_action({"Action": "Getvar", "Variable": "NOSUCHGLOBAL"})
    check(r.get_header("Response") == "Success" and r.get_header("Value") == "", "Getvar global %r" % r.response)
    r = m.send_action({"Action": "Hangup", "Channel": "SIP/nobody-00000009"})
    check(r.get_header("Message") == "No such channel", "Hangup unknown %r" % r.response)
    m.close()  # logs off first (Logoff, then the server closes)

    # MD5 through plain send_action (pyst2's login() only knows Secret).
    m = connect(port)
    r = m.send_action({"Action": "Challenge", "AuthType": "MD5"})
    challenge = r.get_header("Challenge")
    check(challenge, "challenge %r" % r.response)
    key = hashlib.md5((challenge + "admin-secret").encode()).hexdigest()
    r = m.send_action({"Action": "Login", "AuthType": "MD5", "Username": "admin", "Key": key})
    check(r.get_header("Message") == "Authentication accepted", "MD5 login %r" % r.response)
    m.close()  # logs off first (Logoff, then the server closes)

    for user, secret in (("admin", "wrong-secret"), ("mallory", "x")):
        m = connect(port)
        try:
            m.login(user, secret)
            check(False, "login as %s with a wrong secret accepted" % user)
        except asterisk.manager.ManagerAuthException as e:
            check(str(e) == "Authentication failed", "refused %s: %s" % (user, e))
        m._running.clear()  # the server closed the connection: no logoff
        m.close()
    print("DONE", flush=True)


main(int(sys.argv[1]))
