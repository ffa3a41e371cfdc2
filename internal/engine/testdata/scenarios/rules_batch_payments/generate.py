#!/usr/bin/env python3
"""Writes left.csv (invoices) and right.csv (batch payments) for rules_batch_payments.

Deterministic (fixed seed). Each batch of 10 to 50 invoices is paid by one payment whose
reference is BATCH-<batch id>. Deliberate faults are listed in README.md.
"""
import random

rng = random.Random(20261106)
customers = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne"]
invoices, payments = [], []
n = 0
for b in range(1, 31):
    batch = "B%03d" % b
    size = rng.randint(10, 50)
    total = 0
    for _ in range(size):
        n += 1
        cents = rng.randint(1000, 500000)
        total += cents
        invoices.append(("INV-%05d" % n, rng.choice(customers), batch, cents, "2026-01-%02d" % rng.randint(1, 28)))
        if rng.random() < 0.03:
            # an invoice that belongs to no batch
            n += 1
            invoices.append(("INV-%05d" % n, rng.choice(customers), "", rng.randint(1000, 500000), "2026-01-15"))
    if b == 9:
        continue  # batch 9 is never paid
    paid = total
    if b in (5, 17):
        paid = total * 97 // 100  # 3 % short: beyond the 1 % tolerance
    if b == 22:
        paid = total + total // 200  # 0.5 % over: within tolerance
    payments.append(("PAY-%s" % batch, "BATCH-%s" % batch, paid, "2026-02-%02d" % rng.randint(1, 28)))
    if b == 12:
        # a second payment for the same batch, 0.2 % off: the exact one wins
        payments.append(("PAY-%sX" % batch, "BATCH-%s" % batch, total + total // 500, "2026-02-27"))
payments.append(("PAY-B999", "BATCH-B999", 123456, "2026-02-10"))
rng.shuffle(payments)


def money(c):
    return "%d.%02d" % (c // 100, c % 100)


with open("left.csv", "w") as f:
    f.write("invoice_id,customer,batch_id,amount,issued_on\n")
    for i in invoices:
        f.write("%s,%s,%s,%s,%s\n" % (i[0], i[1], i[2], money(i[3]), i[4]))
with open("right.csv", "w") as f:
    f.write("payment_id,reference,amount,paid_on\n")
    for p in payments:
        f.write("%s,%s,%s,%s\n" % (p[0], p[1], money(p[2]), p[3]))
