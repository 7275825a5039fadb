/**
 * WARP Billing: NetSuite -> WARP events (NetSuite has no native webhooks).
 *
 * A User Event script (SuiteScript 2.1), deployed on Customer Payment, Invoice, Credit Memo and
 * Customer records. afterSubmit posts one JSON event to the WARP `webhooks` function's /netsuite
 * route, signed as the receiver expects (shared/warp_billing/webhooks/signatures.py):
 *
 *   X-Warp-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *
 * The receiver accepts it within 5 minutes of its clock and keeps each event id once, so the id
 * is derived from the record, the change and its last-modified time (a retry sends the same id).
 *
 * Events (shared/warp_billing/webhooks/netsuite_events.py has the contract):
 *   customer_payment.created|edited  {internal_id, external_id, customer_id, amount, currency, date,
 *                                     applies_to: [{invoice_number, amount}]}
 *   invoice.voided                   {internal_id, invoice_number, customer_id}
 *   invoice.credited                 {internal_id (the credit memo), credit_memo, invoice_number, customer_id, amount}
 *   customer.terms_changed           {customer_id, net_days, credit_limit}
 *
 * Script parameters (Setup > Scripts > Deployment):
 *   custscript_warp_webhook_url      https://<region>-<project>.cloudfunctions.net/webhooks/netsuite
 *   custscript_warp_secret_id        the API secret's script id (Setup > Company > API Secrets),
 *                                    e.g. custsecret_warp_webhook; its value is WARP's netsuite-webhook-secret
 *
 * Our customers' externalId is "customer:<WARP customer id>" and our invoices' externalId is the
 * invoice number (shared/warp_billing/erp/records.py), which is how a record is named to WARP.
 *
 * @NApiVersion 2.1
 * @NScriptType UserEventScript
 * @NModuleScope SameAccount
 */
define(['N/https', 'N/crypto', 'N/encode', 'N/runtime', 'N/search', 'N/log'],
    (https, crypto, encode, runtime, search, log) => {

        const CUSTOMER_PREFIX = 'customer:';

        const warpCustomerId = (customerInternalId) => {
            if (!customerInternalId) return null;
            const found = search.lookupFields({type: search.Type.CUSTOMER, id: customerInternalId,
                columns: ['externalid']});
            const external = (found.externalid && found.externalid[0] && found.externalid[0].value) || '';
            return external.indexOf(CUSTOMER_PREFIX) === 0 ? external.substring(CUSTOMER_PREFIX.length) : null;
        };

        const invoiceNumber = (invoiceInternalId) => {
            const found = search.lookupFields({type: search.Type.INVOICE, id: invoiceInternalId,
                columns: ['externalid', 'tranid']});
            const external = found.externalid && found.externalid[0] && found.externalid[0].value;
            return external || found.tranid;
        };

        const sign = (body, timestamp) => {
            const script = runtime.getCurrentScript();
            const key = crypto.createSecretKey({
                secret: script.getParameter({name: 'custscript_warp_secret_id'}),
                encoding: encode.Encoding.UTF_8,
            });
            const hmac = crypto.createHmac({algorithm: crypto.HashAlg.SHA256, key: key});
            hmac.update({input: `${timestamp}.${body}`, inputEncoding: encode.Encoding.UTF_8});
            return `t=${timestamp},v1=${hmac.digest({outputEncoding: encode.Encoding.HEX}).toLowerCase()}`;
        };

        const post = (type, recordId, stamp, record) => {
            const body = JSON.stringify({
                id: `${type}:${recordId}:${stamp}`, type: type, occurred_at: new Date().toISOString(), record: record,
            });
            const timestamp = Math.floor(Date.now() / 1000);
            const url = runtime.getCurrentScript().getParameter({name: 'custscript_warp_webhook_url'});
            const response = https.post({
                url: url, body: body,
                headers: {'Content-Type': 'application/json', 'X-Warp-Signature': sign(body, timestamp)},
            });
            if (response.code < 200 || response.code >= 300) {
                // afterSubmit cannot undo the save: log it, an operator re-saves the record to send it again
                log.error({title: 'WARP webhook refused', details: `${type} ${recordId}: HTTP ${response.code} ${response.body}`});
            }
        };

        const money = (value) => (Math.round(Number(value || 0) * 100) / 100).toFixed(2);

        const paymentEvent = (context) => {
            const payment = context.newRecord;
            const applies = [];
            for (let line = 0; line < payment.getLineCount({sublistId: 'apply'}); line += 1) {
                if (!payment.getSublistValue({sublistId: 'apply', fieldId: 'apply', line: line})) continue;
                const doc = payment.getSublistValue({sublistId: 'apply', fieldId: 'doc', line: line});
                applies.push({invoice_number: invoiceNumber(doc),
                    amount: money(payment.getSublistValue({sublistId: 'apply', fieldId: 'amount', line: line}))});
            }
            const tranDate = payment.getValue({fieldId: 'trandate'});
            return {
                internal_id: String(payment.id), external_id: payment.getValue({fieldId: 'externalid'}) || null,
                customer_id: warpCustomerId(payment.getValue({fieldId: 'customer'})),
                amount: money(payment.getValue({fieldId: 'payment'})),
                currency: payment.getText({fieldId: 'currency'}) || 'USD',
                date: tranDate ? tranDate.toISOString().substring(0, 10) : null,
                applies_to: applies,
            };
        };

        const afterSubmit = (context) => {
            const record = context.newRecord;
            const stamp = String(record.getValue({fieldId: 'lastmodifieddate'}) || Date.now()).replace(/\s+/g, '');
            const type = context.type;
            const UE = context.UserEventType;
            try {
                if (record.type === 'customerpayment' && (type === UE.CREATE || type === UE.EDIT)) {
                    post(type === UE.CREATE ? 'customer_payment.created' : 'customer_payment.edited',
                        record.id, stamp, paymentEvent(context));
                } else if (record.type === 'invoice' && (type === UE.DELETE || type === UE.CANCEL
                    || record.getValue({fieldId: 'voided'}) === true || record.getValue({fieldId: 'voided'}) === 'T')) {
                    post('invoice.voided', record.id, stamp, {
                        internal_id: String(record.id),
                        invoice_number: record.getValue({fieldId: 'externalid'}) || record.getValue({fieldId: 'tranid'}),
                        customer_id: warpCustomerId(record.getValue({fieldId: 'entity'})),
                    });
                } else if (record.type === 'creditmemo' && type === UE.CREATE
                    && String(record.getValue({fieldId: 'externalid'}) || '').indexOf('-CN-') < 0) {
                    // a credit memo WARP did not issue (ours carry "<C>-CN-<n>" as externalId)
                    const applied = record.getLineCount({sublistId: 'apply'}) > 0
                        ? record.getSublistValue({sublistId: 'apply', fieldId: 'doc', line: 0}) : null;
                    post('invoice.credited', record.id, stamp, {
                        internal_id: String(record.id), credit_memo: record.getValue({fieldId: 'tranid'}),
                        invoice_number: applied ? invoiceNumber(applied) : null,
                        customer_id: warpCustomerId(record.getValue({fieldId: 'entity'})),
                        amount: money(record.getValue({fieldId: 'total'})),
                    });
                } else if (record.type === 'customer' && type === UE.EDIT) {
                    const old = context.oldRecord;
                    const termsChanged = old.getValue({fieldId: 'terms'}) !== record.getValue({fieldId: 'terms'});
                    const limitChanged = old.getValue({fieldId: 'creditlimit'}) !== record.getValue({fieldId: 'creditlimit'});
                    const external = String(record.getValue({fieldId: 'externalid'}) || '');
                    if ((termsChanged || limitChanged) && external.indexOf(CUSTOMER_PREFIX) === 0) {
                        const termsId = record.getValue({fieldId: 'terms'});
                        const days = termsId ? search.lookupFields({type: search.Type.TERM, id: termsId,
                            columns: ['daysuntilnetdue']}).daysuntilnetdue : null;
                        const limit = record.getValue({fieldId: 'creditlimit'});
                        post('customer.terms_changed', record.id, stamp, {
                            customer_id: external.substring(CUSTOMER_PREFIX.length),
                            net_days: days === null || days === '' ? null : Number(days),
                            credit_limit: limit === null || limit === '' ? null : money(limit),
                        });
                    }
                }
            } catch (error) {
                log.error({title: 'WARP webhook not sent', details: `${record.type} ${record.id}: ${error.message}`});
            }
        };

        return {afterSubmit};
    });
