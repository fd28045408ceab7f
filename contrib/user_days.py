#!/usr/bin/python3
"""user_days.py — read ltvpipe's user-days with SQL.

  contrib/user_days.py REGISTRY [SQL]

ltvpipe stores user-days (one row per user and day: revenue, events,
purchases) as columnar blocks in table user_day_blocks (format in
include/ltv/user_day_block.h), not as one SQLite row each. This script
decodes them into a temporary table `user_days (uid, day, revenue, events,
purchases)`, which shadows the old table of that name, and runs SQL (default:
every row in key order) with the registry's other tables beside it, printing
rows as the sqlite3 tool does (columns joined by '|'). The registry is opened
read-only. Example:

  contrib/user_days.py models/registry.sqlite \\
    "select u.user_id, sum(d.revenue) from user_days d join users u using (uid) group by 1"
"""
import sqlite3
import struct
import sys

MAGIC = b'LTVUDAY1'


def varints(buf, count):
    """The first count unsigned LEB128 numbers of buf."""
    out, v, shift = [], 0, 0
    for b in buf:
        v |= (b & 0x7f) << shift
        if b & 0x80:
            shift += 7
            continue
        out.append(v)
        v, shift = 0, 0
        if len(out) == count:
            break
    if len(out) != count:
        raise ValueError('user-day block: a section is short')
    return out


def decode(block):
    """Rows (uid, day, revenue, events, purchases) of one block."""
    if block[:8] != MAGIC or struct.unpack_from('<I', block, 8)[0] != 1:
        raise ValueError('not a version-1 user-day block')
    n, l_uid, l_day, l_ev, l_pu = struct.unpack_from('<5Q', block, 12)
    at = 12 + 40
    sec = []
    for length in (l_uid, l_day, l_ev, l_pu):
        sec.append(varints(block[at:at + length], n))
        at += length
    revenue = struct.unpack_from('<%dd' % n, block, at)
    rows, uid, day = [], 0, 0
    for i in range(n):
        if sec[0][i]:
            uid += sec[0][i]
            day = sec[1][i]
        else:
            day += sec[1][i] + 1
        rows.append((uid, day, revenue[i], sec[2][i], sec[3][i]))
    return rows


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip())
    sql = sys.argv[2] if len(sys.argv) == 3 else 'select * from user_days order by uid, day'
    db = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True)
    db.execute('create temp table user_days (uid integer, day integer, revenue real,'
               ' events integer, purchases integer, primary key (uid, day))')
    upsert = ('insert into temp.user_days values (?, ?, ?, ?, ?) on conflict (uid, day) do update'
              ' set revenue = revenue + excluded.revenue, events = events + excluded.events,'
              ' purchases = purchases + excluded.purchases')
    tables = {r[0] for r in db.execute("select name from main.sqlite_master where type = 'table'")}
    if 'user_days' in tables:  # what versions before schema 8 wrote
        db.executemany(upsert, db.execute('select uid, day, revenue, events, purchases'
                                          ' from main.user_days').fetchall())
    if 'user_day_blocks' in tables:
        for (block,) in db.execute('select data from user_day_blocks order by uid_min, id').fetchall():
            db.executemany(upsert, decode(block))
    for row in db.execute(sql):
        print('|'.join('' if v is None else str(v) for v in row))


if __name__ == '__main__':
    main()
