"""Billing: closing a customer's cycle into an invoice, its fees, journal and register entry.

The modules are named after the steps of a cycle close:

* ``cycles``: which days (and which UTC instants) a period covers, issue and due dates;
* ``rated_file`` / ``usage_lines``: one streaming pass over rated usage into exact sums;
* ``tiers``, ``commitments``, ``bulk_discounts``: monthly volume pricing;
* ``recurring``: DIDs and other monthly charges, prorated by day, in arrears or in advance;
* ``fees``, ``usf``, ``taxes``: E911, the FCC contribution factor table and the tax-engine port;
* ``invoice``: the invoice document and how the lines above compose into it;
* ``revenue_recognition``: the journal an invoice implies;
* ``invoice_store``: the register that numbers issued documents and issues credit notes;
* ``render_html``: the printable rendering;
* ``cycle_close``: the service that runs the steps for one or many customers.

Everything here is pure except the register (files) and the rated-file scan (files,
worker processes); no cloud SDK or HTTP client is imported.
"""
