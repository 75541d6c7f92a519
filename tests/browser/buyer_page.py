"""The buyer page in a real browser (Debian's chromium, driven by Python playwright through
`executable_path`; no browser download). Two buyers, A and B, in two browser contexts on one
event, against two seatlock processes started by scripts/browser-test.sh:

  MAIN    (hold TTL 60 s)  A holds A5 -> B sees A5 held within 1 s without reloading, and B's
                           attempt on it is refused with a visible message; A's declined card
                           keeps the hold; A pays with the test card -> B sees A5 sold.
  SHORT   (hold TTL 2 s)   A's hold expires on both screens.
  TOKEN   (token mode)     the page asks for a token, takes one pasted after it loaded, and buys
                           as the token's buyer without a name.

Plus: an unknown event is explained in words; the seat buttons have labels that say their state,
state is never shown by colour alone, and Tab walks the seats in order. Every seat shows what
identifies it, in every state: its number in a row, its code otherwise (a `totalSeats` event's
S1..Sn, listed seats without row/number), a long code shortened on screen but whole in the
button's accessible name, without breaking the grid; a 1,000-row house renders. Screenshots go to
target/browser/. Exits non-zero on the first failed check.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import sys
import time
import urllib.request

from playwright.sync_api import expect, sync_playwright

MAIN = os.environ["MAIN_URL"]
SHORT = os.environ["SHORT_URL"]
TOKEN = os.environ["TOKEN_URL"]
TOKEN_SECRET = os.environ["TOKEN_SECRET"]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = os.environ.get("SHOTS_DIR", "target/browser")
LABEL = re.compile(
    r"^Seat \S+, \d+\.\d\d, (available|selected|held by you|held by someone else|sold)$"
)

passed = []


def ok(what):
    passed.append(what)
    print(f"ok    {what}", flush=True)


def post(base, path, body):
    req = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    return json.load(urllib.request.urlopen(req))


def new_event(base, name, **seating):
    body = {"name": name, "date": "2030-06-01T19:00:00Z", "location": "Browser Hall", **seating}
    return post(base, "/events", body)["eventId"]


def create_event(base, name):
    seats = [
        {"code": f"{row}{n}", "row": row, "number": n, "price": 40 if row == "A" else 25}
        for row in "ABC"
        for n in range(1, 9)
    ]
    body = {
        "name": name,
        "date": "2030-06-01T19:00:00Z",
        "location": "Browser Hall",
        "seats": seats,
        "tiers": [{"code": "FLOOR", "name": "Standing floor", "price": 55, "capacity": 50}],
    }
    req = urllib.request.Request(
        f"{base}/events",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    return json.load(urllib.request.urlopen(req))["eventId"]


def open_buyer(browser, base, event, name, timeout=5000):
    context = browser.new_context(viewport={"width": 1200, "height": 850})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(f"{base}/e/{event}")
    page.fill("#buyer", name)
    expect(page.locator("#live")).to_contain_text("Live", timeout=timeout)
    return page, errors


def seat(page, code):
    return page.locator(f"button.seat[data-code='{code}']")


# What a seat shows on screen (innerText: rendered text only, CSS-generated glyphs excluded), its
# accessible name, and whether its text fits: one round trip for the whole map.
SEAT_FACES = """els => els.map(e => {
    const r = e.getBoundingClientRect();
    return {code: e.dataset.code, text: e.innerText.trim(), name: e.getAttribute('aria-label'),
            status: e.dataset.status, fits: e.scrollWidth <= e.clientWidth,
            top: Math.round(r.top), left: r.left, right: r.right, width: r.width};
})"""


def shows_its_identity(face, expected):
    """The seat's visible text is `expected`, or, for a long one, its head and tail around `…`."""
    text = face["text"]
    if text == expected:
        return True
    head, sep, tail = text.partition("…")
    return bool(sep and head and tail and expected.startswith(head) and expected.endswith(tail))


def check_seat_faces(page, expected, what):
    """Every seat button shows what identifies it (`expected`: code -> number or code), readable
    (not clipped), with the whole code in its accessible name; seats of one line are of one
    width and do not overlap."""
    faces = page.locator("button.seat[data-code]").evaluate_all(SEAT_FACES)
    assert len(faces) == len(expected), (what, len(faces), len(expected))
    blank = [
        (f["code"], f["status"], f["text"])
        for f in faces
        if not shows_its_identity(f, expected[f["code"]])
    ]
    assert not blank, f"{what}: seats that do not show what they are: {blank[:8]}"
    clipped = [f["code"] for f in faces if not f["fits"]]
    assert not clipped, f"{what}: seat text clipped: {clipped[:8]}"
    unnamed = [f["code"] for f in faces if not (f["name"] or "").startswith(f"Seat {f['code']}, ")]
    assert not unnamed, f"{what}: accessible name without the whole code: {unnamed[:8]}"
    lines = {}
    for f in faces:
        lines.setdefault(f["top"], []).append(f)
    for line in lines.values():
        widths = {round(f["width"]) for f in line}
        assert len(widths) == 1, f"{what}: seats of one line differ in width: {widths}"
        for a, b in zip(line, line[1:]):
            assert a["right"] <= b["left"], f"{what}: {a['code']} overlaps {b['code']}"
    return faces


def seats_say_who_they_are(browser):
    """Seats without row and number show their codes; row seats show their numbers; in every
    state; long codes are shortened on screen only. Screenshots of each case."""
    # A totalSeats event (S1..S20), with seats in every state.
    event = new_event(MAIN, "Browser test: 20 seats", totalSeats=20)
    post(MAIN, f"/events/{event}/seats/reserve", {"userId": "carol", "seatCodes": ["S5", "S6"]})
    sold = post(MAIN, f"/events/{event}/seats/reserve", {"userId": "dave", "seatCodes": ["S12"]})
    sold = {"userId": "dave", "holdGroupId": sold["holdGroupId"]}
    post(MAIN, f"/events/{event}/seats/confirm", sold)
    page, errors = open_buyer(browser, MAIN, event, "erin")
    seat(page, "S9").click()
    seat(page, "S10").click()
    page.click("#hold")
    expect(page.locator("#message")).to_contain_text("Held for you", timeout=5000)
    seat(page, "S1").focus()
    page.screenshot(path=f"{SHOTS}/total-seats-20.png", full_page=True)
    faces = check_seat_faces(page, {f"S{n}": f"S{n}" for n in range(1, 21)}, "totalSeats")
    states = {f["status"] for f in faces}
    assert {"available", "held", "booked", "mine"} <= states, states
    ok("a 20-seat totalSeats event: every seat shows its code S1..S20, in every state")

    # Listed seats without row/number, one code too long for a square.
    codes = ["BOX-1", "BOX-2", "A-12", "A-13", "VIP7", "VIP8", "BALCONY-LEFT-101"]
    codes += ["BALCONY-LEFT-102"] + [f"VIP{n}" for n in range(9, 30)]
    listed = [{"code": c, "price": 30} for c in codes]
    listed = new_event(MAIN, "Browser test: listed seats", seats=listed)
    page2, errors2 = open_buyer(browser, MAIN, listed, "erin")
    seat(page2, "A-12").click()
    page2.screenshot(path=f"{SHOTS}/listed-seats.png", full_page=True)
    faces = check_seat_faces(page2, {c: c for c in codes}, "listed seats")
    long = seat(page2, "BALCONY-LEFT-101")
    expect(long).to_have_accessible_name("Seat BALCONY-LEFT-101, 30.00, available")
    expect(long).to_have_attribute("title", "BALCONY-LEFT-101")  # whole on hover, too
    text = next(f["text"] for f in faces if f["code"] == "BALCONY-LEFT-101")
    assert text != next(f["text"] for f in faces if f["code"] == "BALCONY-LEFT-102"), text
    ok(f"listed seats show their codes; a long one reads {text!r}, whole to a screen reader")

    # A 1,000-row house, rows of 20 to 100 seats, named as theatres do (A..Z, AA..ZZ, AAA..):
    # letters only, so a seat's code (row and number) is never another row's.
    rows = [{"name": row_name(i), "seats": 20 + (i * 37) % 81, "price": 25} for i in range(1000)]
    house = new_event(MAIN, "Browser test: 1,000 rows", rows=rows)
    expected = {f"{r['name']}{n}": str(n) for r in rows for n in range(1, r["seats"] + 1)}
    page3, errors3 = open_buyer(browser, MAIN, house, "erin", timeout=30000)
    expect(page3.locator("button.seat[data-code]")).to_have_count(len(expected), timeout=30000)
    page3.screenshot(path=f"{SHOTS}/house-1000-rows-top.png")
    middle = f"{rows[500]['name']}{rows[500]['seats']}"  # the last seat of the 501st row
    seat(page3, middle).scroll_into_view_if_needed()
    seat(page3, middle).focus()
    page3.screenshot(path=f"{SHOTS}/house-1000-rows-middle.png")
    check_seat_faces(page3, expected, "1,000 rows")
    # The map scrolls in its own box: the page does not grow sideways, the basket stays in view.
    wide = page3.evaluate("document.documentElement.scrollWidth")
    assert wide <= 1200, f"the page is {wide} px wide"
    hold = page3.locator("#hold").bounding_box()
    assert hold and hold["x"] + hold["width"] <= 1200, hold
    ok(f"a 1,000-row house ({len(expected)} seats): every seat shows its number")
    assert not (errors + errors2 + errors3), f"page errors: {errors + errors2 + errors3}"


def row_name(i):
    """0 -> A, 25 -> Z, 26 -> AA, ... (as theatres letter their rows)."""
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name


def call(base, method, path, body):
    req = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method=method,
    )
    return json.load(urllib.request.urlopen(req))


def jwt(sub, **claims):
    """An HS256 JWT signed with the token-mode instance's secret."""
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = enc(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = enc(json.dumps({"sub": sub, "exp": int(time.time()) + 3600, **claims}).encode())
    sig = hmac.new(TOKEN_SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{enc(sig)}"


def token_mode(browser):
    """In token mode the page asks for a token, takes one pasted after it loaded, and buys as
    the token's buyer without a name."""
    admin = {"authorization": f"Bearer {jwt('boss', role='admin')}", "content-type": "application/json"}
    body = {"name": "Browser test: token mode", "date": "2030-06-01T19:00:00Z", "location": "Hall",
            "totalSeats": 4}
    req = urllib.request.Request(f"{TOKEN}/events", data=json.dumps(body).encode(), headers=admin)
    event = json.load(urllib.request.urlopen(req))["eventId"]
    context = browser.new_context(viewport={"width": 1200, "height": 850})
    page = context.new_page()
    page.goto(f"{TOKEN}/e/{event}")
    expect(page.locator("#message")).to_contain_text("paste a valid token", timeout=5000)
    expect(page.locator("#token")).to_be_visible()
    page.fill("#token", jwt("dana"))
    page.dispatch_event("#token", "change")
    expect(page.locator("#live")).to_contain_text("Live", timeout=5000)
    assert page.input_value("#buyer") == "", "no name given"
    seat(page, "S2").click()
    page.click("#hold")
    expect(page.locator("#message")).to_contain_text("Held for you", timeout=5000)
    page.fill("#card", "4242 4242 4242 4242")
    page.click("#pay-button")
    expect(page.locator("#message")).to_contain_text("Booked!", timeout=5000)
    booking = page.locator("#booked").inner_text().split()[-1]
    req = urllib.request.Request(f"{TOKEN}/bookings/{booking}", headers=admin)
    assert json.load(urllib.request.urlopen(req))["userId"] == "dana"
    ok("token mode: a token pasted after load takes effect; the page buys as the token's buyer")
    context.close()


def not_on_sale_yet(browser):
    """A blocked seat looks and reads unlike a sold one; before the sales window opens the page
    says when it opens, and a hold attempt is refused in those words."""
    event = new_event(MAIN, "Browser test: not on sale yet", totalSeats=6)
    hold = post(MAIN, f"/events/{event}/seats/reserve", {"userId": "zed", "seatCodes": ["S3"]})
    post(MAIN, f"/events/{event}/seats/confirm", {"userId": "zed", "holdGroupId": hold["holdGroupId"]})
    post(MAIN, f"/events/{event}/seats/block", {"seatCodes": ["S2"], "reason": "camera"})
    opens = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    call(MAIN, "PATCH", f"/events/{event}", {"salesStart": opens})
    page, errors = open_buyer(browser, MAIN, event, "carol")
    expect(page.locator("#sales")).to_contain_text("Sales open", timeout=5000)
    expect(seat(page, "S2")).to_have_attribute("data-status", "blocked")
    expect(seat(page, "S3")).to_have_attribute("data-status", "booked")
    blocked = seat(page, "S2").get_attribute("aria-label")
    sold = seat(page, "S3").get_attribute("aria-label")
    assert blocked.endswith("not for sale") and sold.endswith("sold"), (blocked, sold)
    colours = [
        seat(page, c).evaluate("e => getComputedStyle(e).backgroundColor") for c in ("S2", "S3")
    ]
    assert colours[0] != colours[1], colours
    seat(page, "S1").click()
    page.click("#hold")
    expect(page.locator("#message")).to_contain_text("Sales have not opened yet", timeout=5000)
    page.screenshot(path=f"{SHOTS}/not-on-sale-yet.png", full_page=True)
    # The refused hold's 409 is logged by the browser as a failed load; nothing else may be.
    errors = [e for e in errors if "409 (Conflict)" not in e]
    assert not errors, f"page errors: {errors}"
    ok("a blocked seat reads 'not for sale' in its own colour; the page says when sales open")
    page.context.close()


def main():
    os.makedirs(SHOTS, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        event = create_event(MAIN, "Browser test: live seat map")
        a, a_errors = open_buyer(browser, MAIN, event, "alice")
        b, b_errors = open_buyer(browser, MAIN, event, "bob")

        # A holds A5 (and two floor passes); B sees it held without reloading, within 1 s.
        seat(a, "A5").click()
        expect(seat(a, "A5")).to_have_attribute("aria-pressed", "true")
        a.fill("#tier-FLOOR", "2")
        a.click("#hold")
        expect(a.locator("#message")).to_contain_text("Held for you", timeout=5000)
        held_at = time.monotonic()
        expect(seat(b, "A5")).to_have_attribute("data-status", "held", timeout=1000)
        lag = time.monotonic() - held_at
        expect(b.locator(".tier .left")).to_have_text("48 left", timeout=1000)
        ok(f"B sees A5 held {lag * 1000:.0f} ms after A's hold, and the floor at 48 left")
        expect(seat(a, "A5")).to_have_attribute("data-status", "mine")
        b.screenshot(path=f"{SHOTS}/b-sees-a5-held.png", full_page=True)

        # B tries to take it: refused, in words.
        seat(b, "A5").click(force=True)  # aria-disabled, yet a click explains why
        expect(b.locator("#message")).to_contain_text("A5 is not available", timeout=1000)
        ok("B's attempt on A5 is refused with a visible message")

        # A's card is declined: the hold stays, on both screens.
        a.fill("#card", "4000 0000 0000 0002")
        a.click("#pay-button")
        expect(a.locator("#message")).to_contain_text("Card declined")
        expect(a.locator("#holding")).to_be_visible()
        expect(seat(b, "A5")).to_have_attribute("data-status", "held")
        ok("a declined card keeps the hold")
        a.screenshot(path=f"{SHOTS}/a-card-declined.png", full_page=True)

        # A pays with the test card: sold, and B sees it sold within 1 s.
        a.fill("#card", "4242 4242 4242 4242")
        a.click("#pay-button")
        expect(a.locator("#message")).to_contain_text("Booked!", timeout=5000)
        paid_at = time.monotonic()
        expect(seat(b, "A5")).to_have_attribute("data-status", "booked", timeout=1000)
        ok(f"B sees A5 sold {(time.monotonic() - paid_at) * 1000:.0f} ms after A paid")
        expect(seat(a, "A5")).to_have_attribute("data-status", "booked")
        a.screenshot(path=f"{SHOTS}/buyer-page.png", full_page=True)

        # Accessibility of the seat buttons: labels that say the state, never colour alone, and
        # Tab walks the seats in order.
        buttons = b.locator("button.seat[data-code]")
        labels = buttons.evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
        bad = [l for l in labels if not LABEL.match(l or "")]
        assert not bad, f"seat labels: {bad[:5]}"
        assert any(l.startswith("Seat A5, 40.00, sold") for l in labels), labels[:8]
        # The state's glyph: drawn by CSS (::before), or else the button's text.
        glyphs = buttons.evaluate_all(
            """els => els.filter(e => e.dataset.status !== 'available').map(e => {
                const drawn = getComputedStyle(e, '::before').content;
                return [e.dataset.status, drawn === 'none' ? e.innerText : drawn];
            })"""
        )
        assert glyphs and all(g.strip(' "') for _, g in glyphs), glyphs
        assert len({g for _, g in glyphs}) == len({st for st, _ in glyphs}), glyphs  # one per state
        seat(b, "B1").focus()
        order = []
        for _ in range(4):
            order.append(b.evaluate("document.activeElement.dataset.code"))
            b.keyboard.press("Tab")
        assert order == ["B1", "B2", "B3", "B4"], order
        b.keyboard.press("Shift+Tab")
        b.keyboard.press("Enter")
        expect(seat(b, "B4")).to_have_attribute("aria-pressed", "true")
        ok("seat buttons: labelled with their state, glyphs beside colour, Tab order B1..B4, Enter selects")
        rows = {f"{r}{n}": str(n) for r in "ABC" for n in range(1, 9)}
        check_seat_faces(b, rows, "rows")
        ok("row seats show their numbers in every state (available, selected, held, sold)")
        seats_say_who_they_are(browser)

        # An unknown event is explained, not a blank page.
        c = a.context.new_page()
        c.goto(f"{MAIN}/e/999999")
        expect(c.locator("#message")).to_contain_text("does not exist", timeout=5000)
        ok("an unknown event is explained in words")

        not_on_sale_yet(browser)
        token_mode(browser)

        # Expiry on both screens (the instance with a 2 s hold TTL).
        short_event = create_event(SHORT, "Browser test: expiry")
        a2, _ = open_buyer(browser, SHORT, short_event, "alice")
        b2, _ = open_buyer(browser, SHORT, short_event, "bob")
        seat(a2, "C3").click()
        a2.click("#hold")
        expect(a2.locator("#message")).to_contain_text("Held for you", timeout=5000)
        expect(seat(b2, "C3")).to_have_attribute("data-status", "held", timeout=1000)
        expect(a2.locator("#message")).to_contain_text("hold expired", timeout=4000)
        expect(seat(a2, "C3")).to_have_attribute("data-status", "available", timeout=2000)
        expect(seat(b2, "C3")).to_have_attribute("data-status", "available", timeout=2000)
        ok("a 2 s hold expires on both screens")
        b2.screenshot(path=f"{SHOTS}/expired.png", full_page=True)

        errors = a_errors + b_errors
        assert not errors, f"page errors: {errors}"
        ok("no script errors on the pages")
        browser.close()
    print(f"browser tests: {len(passed)} passed", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure and exit non-zero
        print(f"FAILED after {len(passed)} checks: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
