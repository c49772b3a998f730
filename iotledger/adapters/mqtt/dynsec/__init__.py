"""Mosquitto's dynamic-security plugin, kept in step with iotledger's credentials.

With `IOTLEDGER_MQTT_AUTH=dynsec`, `IOTLEDGER_MQTT_URL` names the admin that
`mosquitto_ctrl dynsec init FILE USER PASSWORD` created, and nothing else is set
up on the broker: iotledger denies everything by default, creates a role per
device, a shared gateway role, a service role, and its own service client
(`accounts.service_account`: a password derived from `IOTLEDGER_JWT_SECRET`,
so every process of the deployment can connect as it).

iotledger keeps only a hash of a device's or gateway's password, so the
broker can be told a password at one moment only: when it is issued or
rotated. Hence two paths:

- at once: the issuing request appends its event, then calls
  `BrokerAccounts.issue(account, password)` before answering 201 (a rotation
  is the same call); a revocation calls `BrokerAccounts.revoke(account)`,
  which deletes the client, and Mosquitto disconnects it at that moment;
- from the log: `BrokerAccounts.reconcile(desired)` at start and periodically
  deletes what should not be there (only clients and roles marked as this
  deployment's, never the admin), repairs roles, and reports the accounts that
  should exist but are missing (a broker that lost its dynsec file, an issue
  whose broker call failed): their credentials must be issued again, since no
  one has their passwords any more.

Modules: `control` (the JSON command channel), `access` (the access lists as
roles), `accounts` (who gets an account), `state` (reading the plugin back),
`reconciler` (`BrokerAccounts`). `docs/operations.md` has the operator's side.
"""
