"""Turning store rows into what people read: terminal table, JSON, Parquet, HTML."""
