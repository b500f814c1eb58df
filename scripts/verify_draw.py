#!/usr/bin/env python3
"""Re-run a Sales Desk lottery (摇号, R-LCH-2) from its published JSON, standard library only:
python3 verify_draw.py FILE_OR_URL   (the page's /launch/<id>/lottery.json). Exit 0 = OK, 1 = MISMATCH."""
import hashlib, hmac, json, sys, urllib.request

src = sys.argv[1]
doc = json.loads(urllib.request.urlopen(src).read() if "://" in src else open(src, "rb").read())
entrants = sorted((e["number"], e["group"]) for e in doc["entrants"])
text = "".join(f"{number}\t{group}\n" for number, group in entrants)
ok = hashlib.sha256(text.encode("utf-8")).hexdigest() == doc["entrants_digest"]
print(len(entrants), "entrants, digest", "OK" if ok else "MISMATCH")
seed = doc.get("seed")
if seed:
    ok &= hashlib.sha256(seed.encode("utf-8")).hexdigest() == doc["seed_hash"]
    rank = {"first_home": 0, "other": 1} if doc["groups_ordered"] else {}
    keys = {n: hmac.new(seed.encode("utf-8"), n.encode("utf-8"), hashlib.sha256).hexdigest() for n, _ in entrants}
    order = sorted(entrants, key=lambda e: (rank.get(e[1], 1) if rank else 0, keys[e[0]], e[0]))
    for position, (number, group) in enumerate(order, start=1):
        print(position, number, group, keys[number])
    published = [(o["number"], o["draw_key"]) for o in sorted(doc["order"], key=lambda o: o["position"])]
    ok &= published == [(number, keys[number]) for number, _ in order]
else:
    print("not drawn yet: the seed is revealed at the draw")
print("OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
