"""Money in: gateway payments applied to prepaid balances and postpaid invoices (issue 12)."""
