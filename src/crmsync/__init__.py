"""crmsync: checks CRM complaints against published charters on a real business calendar."""

__version__ = "0.1.0"
