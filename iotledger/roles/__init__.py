"""The process roles (`api`, `mqtt`, `projections`) and `iotledger serve`, which runs them."""
