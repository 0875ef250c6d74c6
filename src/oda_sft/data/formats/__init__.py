"""File formats: Alpaca records, the public chat shapes converted to them, JSON streaming, Arrow schema rules."""
