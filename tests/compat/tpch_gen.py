"""A small TPC-H-shaped data generator (same tables and column names, random but deterministic data), for the SQL
tests and benchmarks. Not the official dbgen: values follow its shapes, not its exact distributions.

    python3 tests/compat/tpch_gen.py OUT_DIR [--scale 0.01]   # writes OUT_DIR/<table>.parquet
"""
import argparse
import datetime
import decimal
import os
import random

import pyarrow as pa
import pyarrow.parquet as pq

REGIONS = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
NATIONS = [("ALGERIA", 0), ("ARGENTINA", 1), ("BRAZIL", 1), ("CANADA", 1), ("EGYPT", 4), ("ETHIOPIA", 0), ("FRANCE", 3),
           ("GERMANY", 3), ("INDIA", 2), ("INDONESIA", 2), ("IRAN", 4), ("IRAQ", 4), ("JAPAN", 2), ("JORDAN", 4), ("KENYA", 0),
           ("MOROCCO", 0), ("MOZAMBIQUE", 0), ("PERU", 1), ("CHINA", 2), ("ROMANIA", 3), ("SAUDI ARABIA", 4), ("VIETNAM", 2),
           ("RUSSIA", 3), ("UNITED KINGDOM", 3), ("UNITED STATES", 1)]
SEGMENTS = ["AUTOMOBILE", "BUILDING", "FURNITURE", "HOUSEHOLD", "MACHINERY"]
PRIORITIES = ["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"]
MODES = ["REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB"]
INSTRUCTIONS = ["DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN"]
TYPES = [f"{a} {b} {c}" for a in ["STANDARD", "SMALL", "MEDIUM", "LARGE", "ECONOMY", "PROMO"]
         for b in ["ANODIZED", "BURNISHED", "PLATED", "POLISHED", "BRUSHED"] for c in ["TIN", "NICKEL", "BRASS", "STEEL", "COPPER"]]
CONTAINERS = [f"{a} {b}" for a in ["SM", "LG", "MED", "JUMBO", "WRAP"] for b in ["CASE", "BOX", "BAG", "JAR", "PKG", "PACK", "CAN", "DRUM"]]
WORDS = ["furiously", "quickly", "carefully", "blithely", "special", "pending", "final", "regular", "express", "ironic", "bold",
         "requests", "deposits", "packages", "accounts", "theodolites", "pinto beans", "foxes", "ideas", "dependencies"]
# P_NAME is five of these words, as the specification's generator draws them (q9 looks for 'green', q20 for 'forest%').
COLORS = ("almond antique aquamarine azure beige bisque black blanched blue blush brown burlywood burnished chartreuse "
          "chiffon chocolate coral cornflower cornsilk cream cyan dark deep dim dodger drab firebrick floral forest frosted "
          "gainsboro ghost goldenrod green grey honeydew hot indian ivory khaki lace lavender lawn lemon light lime linen "
          "magenta maroon medium metallic midnight mint misty moccasin navajo navy olive orange orchid pale papaya peach "
          "peru pink plum powder puff purple red rose rosy royal saddle salmon sandy seashell sienna sky slate smoke snow "
          "spring steel tan thistle tomato turquoise violet wheat white yellow").split()
START = datetime.date(1992, 1, 1)


def money(rng, low, high):
    return decimal.Decimal(rng.randint(int(low * 100), int(high * 100))) / 100


def comment(rng, words=4):
    return " ".join(rng.choice(WORDS) for _ in range(words))


def generate(scale=0.01, seed=42):
    rng = random.Random(seed)
    d = pa.decimal128(15, 2)
    tables = {}
    tables["region"] = pa.table({"r_regionkey": pa.array(range(5), pa.int64()), "r_name": REGIONS,
                                 "r_comment": [comment(rng) for _ in REGIONS]})
    tables["nation"] = pa.table({"n_nationkey": pa.array(range(25), pa.int64()), "n_name": [n for n, _ in NATIONS],
                                 "n_regionkey": pa.array([r for _, r in NATIONS], pa.int64()),
                                 "n_comment": [comment(rng) for _ in NATIONS]})
    n_supp = max(10, int(10_000 * scale))
    tables["supplier"] = pa.table({
        "s_suppkey": pa.array(range(1, n_supp + 1), pa.int64()),
        "s_name": [f"Supplier#{i:09d}" for i in range(1, n_supp + 1)],
        "s_address": [comment(rng, 2) for _ in range(n_supp)],
        "s_nationkey": pa.array([rng.randrange(25) for _ in range(n_supp)], pa.int64()),
        "s_phone": [f"{rng.randint(10, 34)}-{rng.randint(100, 999)}-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}" for _ in range(n_supp)],
        "s_acctbal": pa.array([money(rng, -999.99, 9999.99) for _ in range(n_supp)], d),
        "s_comment": [comment(rng) for _ in range(n_supp)],
    })
    n_part = max(20, int(200_000 * scale))
    tables["part"] = pa.table({
        "p_partkey": pa.array(range(1, n_part + 1), pa.int64()),
        "p_name": [" ".join(rng.sample(COLORS, 5)) for _ in range(n_part)],
        "p_mfgr": [f"Manufacturer#{rng.randint(1, 5)}" for _ in range(n_part)],
        "p_brand": [f"Brand#{rng.randint(1, 5)}{rng.randint(1, 5)}" for _ in range(n_part)],
        "p_type": [rng.choice(TYPES) for _ in range(n_part)],
        "p_size": pa.array([rng.randint(1, 50) for _ in range(n_part)], pa.int32()),
        "p_container": [rng.choice(CONTAINERS) for _ in range(n_part)],
        "p_retailprice": pa.array([money(rng, 900, 2100) for _ in range(n_part)], d),
    })
    ps = [(p, s) for p in range(1, n_part + 1) for s in rng.sample(range(1, n_supp + 1), 4)]
    tables["partsupp"] = pa.table({
        "ps_partkey": pa.array([p for p, _ in ps], pa.int64()), "ps_suppkey": pa.array([s for _, s in ps], pa.int64()),
        "ps_availqty": pa.array([rng.randint(1, 9999) for _ in ps], pa.int32()),
        "ps_supplycost": pa.array([money(rng, 1, 1000) for _ in ps], d),
    })
    n_cust = max(30, int(150_000 * scale))
    tables["customer"] = pa.table({
        "c_custkey": pa.array(range(1, n_cust + 1), pa.int64()),
        "c_name": [f"Customer#{i:09d}" for i in range(1, n_cust + 1)],
        "c_address": [comment(rng, 2) for _ in range(n_cust)],
        "c_nationkey": pa.array([rng.randrange(25) for _ in range(n_cust)], pa.int64()),
        "c_phone": [f"{rng.randint(10, 34)}-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}" for _ in range(n_cust)],
        # Some balances are unknown: NULL handling is part of what the tests check.
        "c_acctbal": pa.array([None if i % 37 == 0 else money(rng, -999.99, 9999.99) for i in range(n_cust)], d),
        "c_mktsegment": [rng.choice(SEGMENTS) for _ in range(n_cust)],
        "c_comment": [comment(rng) for _ in range(n_cust)],
    })
    orders, lines = [], []
    n_orders = max(100, int(1_500_000 * scale))
    for o in range(1, n_orders + 1):
        key = o * 4 - rng.randint(0, 3)
        cust = rng.randint(1, n_cust)
        if cust % 3 == 0:  # as in TPC-H, a third of the customers never order
            cust = cust - 1 or 1
        date = START + datetime.timedelta(days=rng.randint(0, 2405))
        total = decimal.Decimal(0)
        status_count = {"F": 0, "O": 0}
        for line in range(1, rng.randint(1, 7) + 1):
            part = rng.randint(1, n_part)
            qty = rng.randint(1, 50)
            price = (decimal.Decimal(qty) * money(rng, 900, 2100)).quantize(decimal.Decimal("0.01"))
            discount = decimal.Decimal(rng.randint(0, 10)) / 100
            tax = decimal.Decimal(rng.randint(0, 8)) / 100
            ship = date + datetime.timedelta(days=rng.randint(1, 121))
            commit = date + datetime.timedelta(days=rng.randint(30, 90))
            receipt = ship + datetime.timedelta(days=rng.randint(1, 30))
            status = "F" if ship <= datetime.date(1995, 6, 17) else "O"
            status_count[status] += 1
            returnflag = (rng.choice("RA") if receipt <= datetime.date(1995, 6, 17) else "N")
            lines.append((key, part, rng.randint(1, n_supp), line, qty, price, discount, tax, returnflag, status, ship, commit, receipt,
                          rng.choice(INSTRUCTIONS), rng.choice(MODES), comment(rng, 3)))
            total += price * (1 + tax) * (1 - discount)
        status = "F" if status_count["O"] == 0 else "O" if status_count["F"] == 0 else "P"
        orders.append((key, cust, status, total.quantize(decimal.Decimal("0.01")), date, rng.choice(PRIORITIES),
                       f"Clerk#{rng.randint(1, 1000):09d}", 0, comment(rng)))
    cols = list(zip(*orders))
    tables["orders"] = pa.table({
        "o_orderkey": pa.array(cols[0], pa.int64()), "o_custkey": pa.array(cols[1], pa.int64()), "o_orderstatus": list(cols[2]),
        "o_totalprice": pa.array(cols[3], d), "o_orderdate": pa.array(cols[4], pa.date32()), "o_orderpriority": list(cols[5]),
        "o_clerk": list(cols[6]), "o_shippriority": pa.array(cols[7], pa.int32()), "o_comment": list(cols[8]),
    })
    cols = list(zip(*lines))
    tables["lineitem"] = pa.table({
        "l_orderkey": pa.array(cols[0], pa.int64()), "l_partkey": pa.array(cols[1], pa.int64()), "l_suppkey": pa.array(cols[2], pa.int64()),
        "l_linenumber": pa.array(cols[3], pa.int32()), "l_quantity": pa.array([decimal.Decimal(q) for q in cols[4]], d),
        "l_extendedprice": pa.array(cols[5], d), "l_discount": pa.array(cols[6], d), "l_tax": pa.array(cols[7], d),
        "l_returnflag": list(cols[8]), "l_linestatus": list(cols[9]), "l_shipdate": pa.array(cols[10], pa.date32()),
        "l_commitdate": pa.array(cols[11], pa.date32()), "l_receiptdate": pa.array(cols[12], pa.date32()),
        "l_shipinstruct": list(cols[13]), "l_shipmode": list(cols[14]), "l_comment": list(cols[15]),
    })
    return tables


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--scale", type=float, default=0.01)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, table in generate(args.scale).items():
        pq.write_table(table, os.path.join(args.out, f"{name}.parquet"))
        print(f"{name}: {table.num_rows} rows")


if __name__ == "__main__":
    main()
