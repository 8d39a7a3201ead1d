"""`make bench`'s parts; `benches/compare.py` runs them."""
