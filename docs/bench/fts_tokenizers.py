"""Index size of SQLite FTS5 tokenizer choices for Duet's message search (docs/benchmarks.md).

Indexes the same messages three ways in contentless FTS5 tables and prints bytes per message (dbstat):
  unicode61       the text as is (a run of Han characters is one token)
  unicode61+split every CJK character made a token of its own (what Duet does)
  trigram         FTS5's trigram tokenizer (substrings of 3+ characters)
and which keywords each finds. Run: python3 docs/bench/fts_tokenizers.py [messages]
"""
import random
import sqlite3
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
rng = random.Random(7)
# Chinese chat: 6 to 30 characters, Zipf-like over 3,000 characters; English chat: 4 to 12 words of a
# Zipf-like 5,000-word vocabulary; half each.
HAN = [chr(0x4E00 + i * 7) for i in range(3000)]
WORDS = ["".join(rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou") for _ in range(rng.randint(1, 4))) for _ in range(5000)]
def zipf(items):
    return items[min(int(rng.paretovariate(1.0)) - 1, len(items) - 1)] if rng.random() < 0.5 else rng.choice(items)
def message(k):
    if k % 2:
        return "".join(zipf(HAN) for _ in range(rng.randint(6, 30)))
    return " ".join(zipf(WORDS) for _ in range(rng.randint(4, 12)))
def split_cjk(t):
    return "".join(f" {c} " if "\u4e00" <= c <= "\u9fff" else c for c in t)

texts = [message(k) for k in range(N)]
db = sqlite3.connect(":memory:")
kinds = {
    "unicode61": ("unicode61 remove_diacritics 2", lambda t: t),
    "unicode61+split": ("unicode61 remove_diacritics 2", split_cjk),
    "trigram": ("trigram", lambda t: t),
}
for name, (tok, prep) in kinds.items():
    table = name.replace("+", "_")
    db.execute(f"CREATE VIRTUAL TABLE {table} USING fts5(text, content='', tokenize='{tok}')")
    db.executemany(f"INSERT INTO {table} (rowid, text) VALUES (?, ?)", ((k, prep(t)) for k, t in enumerate(texts)))
    db.commit()
    size = db.execute(f"SELECT sum(pgsize) FROM dbstat WHERE name LIKE '{table}%'").fetchone()[0]
    print(f"{name:16} {size / N:6.1f} bytes per message")

han = texts[1]
for kw in [han[2], han[2:4], han[2:5], texts[0].split()[0][:3]]:
    found = []
    for name, (tok, prep) in kinds.items():
        table = name.replace("+", "_")
        # Duet's keyword: a phrase whose last word is a prefix; trigram: the substring itself.
        q = '"' + (split_cjk(kw) if name == "unicode61+split" else kw) + '"' + ("" if name == "trigram" else " *")
        n = db.execute(f"SELECT count(*) FROM {table} WHERE {table} MATCH ?", (q,)).fetchone()[0]
        found.append(f"{name} {n}")
    truth = sum(kw in t for t in texts)
    starts = sum(any(w.startswith(kw) for w in t.split()) for t in texts)
    print(f"keyword {kw!r} ({len(kw)} chars, in {truth} messages, {starts} at a word's start): " + ", ".join(found))
