"""blingsync: Bling ERP invoices that reached Emitida DANFE, delivered to the warehouse exactly once."""

__version__ = "0.1.0"
