"""A small multi-language project for the indexer tests, written fresh into a temp folder."""

from __future__ import annotations

from pathlib import Path

FILES: dict[str, str] = {
    ".gitignore": "*.log\nsecrets/\n!keep.log\ngenerated_*.py\n",
    "README.md": "# Shop\n\nA tiny shop.\n\n## Payments\n\nCards are charged through the gateway module.\n",
    "shop/__init__.py": "",
    "shop/cart.py": '''"""The shopping cart."""

from dataclasses import dataclass, field


@dataclass
class Item:
    sku: str
    price_cents: int
    quantity: int = 1


class Cart:
    """Items a customer is about to buy."""

    def __init__(self):
        self.items = []

    def add_item(self, item):
        """Put an item in the cart, merging the same SKU."""
        for it in self.items:
            if it.sku == item.sku:
                it.quantity += item.quantity
                return
        self.items.append(item)

    def total_cents(self):
        """The price of everything in the cart, in cents."""
        return sum(i.price_cents * i.quantity for i in self.items)


def apply_discount(total_cents, percent):
    """Reduce a total by a percentage, rounding down to whole cents."""
    return total_cents * (100 - percent) // 100
''',
    "shop/gateway.py": '''import hashlib


def sign_request(payload: bytes, secret: bytes) -> str:
    """HMAC-like signature the payment gateway checks on every request."""
    return hashlib.sha256(secret + payload).hexdigest()


def charge_card(card_number, amount_cents):
    """Send a charge to the payment gateway and return the transaction id."""
    if amount_cents <= 0:
        raise ValueError("amount must be positive")
    return "tx-" + sign_request(str(amount_cents).encode(), card_number.encode())[:12]
''',
    "web/app.js": '''// Front end of the shop.
import { render } from "./view.js";

export function parseQueryString(query) {
  const out = {};
  for (const part of query.replace(/^\\?/, "").split("&")) {
    const [k, v] = part.split("=");
    out[decodeURIComponent(k)] = decodeURIComponent(v || "");
  }
  return out;
}

export const debounce = (fn, ms) => {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
};

class ProductList {
  constructor(items) {
    this.items = items;
  }
  sortByPrice() {
    return [...this.items].sort((a, b) => a.price - b.price);
  }
}
''',
    "web/types.ts": '''export interface Product {
  id: string;
  price: number;
}

export function formatPrice(cents: number): string {
  return (cents / 100).toFixed(2) + " EUR";
}
''',
    "server/main.go": '''package main

import "fmt"

type Server struct {
	Port int
}

func (s *Server) Address() string {
	return fmt.Sprintf(":%d", s.Port)
}

func main() {
	s := Server{Port: 8080}
	fmt.Println(s.Address())
}
''',
    "engine/src/lib.rs": '''pub struct Inventory {
    counts: Vec<u32>,
}

impl Inventory {
    pub fn restock(&mut self, slot: usize, amount: u32) {
        self.counts[slot] += amount;
    }
}

pub fn checksum(data: &[u8]) -> u32 {
    data.iter().fold(0u32, |acc, b| acc.wrapping_mul(31).wrapping_add(*b as u32))
}
''',
    "java/Invoice.java": '''public class Invoice {
    private final long totalCents;

    public Invoice(long totalCents) {
        this.totalCents = totalCents;
    }

    public long vatCents(int ratePercent) {
        return totalCents * ratePercent / 100;
    }
}
''',
    "native/ring.c": '''#include <stddef.h>

struct ring {
    int *data;
    size_t head, tail, size;
};

int ring_push(struct ring *r, int value) {
    size_t next = (r->head + 1) % r->size;
    if (next == r->tail) return -1;
    r->data[r->head] = value;
    r->head = next;
    return 0;
}
''',
    "config/settings.toml": "[server]\nport = 8080\nhost = \"127.0.0.1\"\n",
    "app.log": "noise\n",
    "keep.log": "kept log line\n",
    "secrets/token.py": "TOKEN = 'x'\n",
    "shop/generated_models.py": "X = 1\n",
    "node_modules/left-pad/index.js": "module.exports = 1;\n",
    "build/out.py": "print('built')\n",
    "tools/build/steps.py": "def build_steps():\n    return ['compile', 'link']\n",  # not output: nested
    "docs/notes/.gitignore": "draft.md\n",
    "docs/notes/draft.md": "# Draft\n",
    "docs/notes/final.md": "# Final notes\n\nShipping is free above 50 EUR.\n",
    "myenv/pyvenv.cfg": "home = /usr/bin\n",
    "myenv/lib/site.py": "x = 1\n",
    "data.bin.py": None,   # binary (NUL bytes) with a .py name
    "big.py": None,        # over 1 MB
    "latin1.py": None,     # not UTF-8
}

# What the walker must return: .gitignore (root, nested, negation), junk folders, a virtualenv
# under an odd name, binaries, big files and unknown types are left out.
INDEXED = sorted([
    "README.md", "shop/__init__.py", "shop/cart.py", "shop/gateway.py", "web/app.js", "web/types.ts",
    "server/main.go", "engine/src/lib.rs", "java/Invoice.java", "native/ring.c", "config/settings.toml",
    "docs/notes/final.md", "latin1.py", "tools/build/steps.py",
])


def make_project(root: Path) -> Path:
    for rel, text in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if text is not None:
            p.write_text(text, encoding="utf-8")
    (root / "data.bin.py").write_bytes(b"\x00\x01\x02binary" * 10)
    (root / "big.py").write_text("x = 1\n" * 200_000)
    (root / "latin1.py").write_bytes("name = 'Jos\xe9'\n".encode("latin-1"))
    return root
