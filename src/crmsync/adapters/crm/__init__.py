"""CRM adapters: the local CRM (SQLite, Salesforce rules) and Salesforce over HTTP."""
