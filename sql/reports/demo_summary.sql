-- demo_summary: what the demo prints at the end, commission by broker type and instrument type.
SELECT broker_type, inst_type, count(DISTINCT ord_id) AS orders, sum(net_fee) AS net_fee,
       sum(broker_rebate) AS broker_rebate
FROM rebate_details
GROUP BY ALL
ORDER BY broker_type, broker_rebate DESC;
