"""Simulated devices against a running iotledger (`iotledger simulate`, docs/simulator.md)."""
