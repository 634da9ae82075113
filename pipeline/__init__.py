"""okx-rebates: collect, keep and report OKX Fully Disclosed broker rebate files (no Prefect imports here)."""
