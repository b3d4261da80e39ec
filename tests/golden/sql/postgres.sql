-- assay per-bin sums (postgres): labels as of 2024-05-01T00:00:00+00:00, policy first
-- edges: 0.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0
WITH "t5" AS (
  SELECT
    "prediction_id",
    "entity_id",
    "scorer",
    "model_version",
    "score",
    "score_kind",
    "probability",
    "abstained",
    "scored_at",
    "recorded_at",
    "horizon_days",
    "target_event",
    "input_hash",
    "seed",
    "source",
    "segments"
  FROM (
    SELECT
      "t2"."prediction_id",
      "t2"."entity_id",
      "t2"."scorer",
      "t2"."model_version",
      "t2"."score",
      "t2"."score_kind",
      "t2"."probability",
      "t2"."abstained",
      "t2"."scored_at",
      "t2"."recorded_at",
      "t2"."horizon_days",
      "t2"."target_event",
      "t2"."input_hash",
      "t2"."seed",
      "t2"."source",
      "t2"."segments",
      ROW_NUMBER() OVER (
        PARTITION BY "t2"."entity_id", "t2"."scorer"
        ORDER BY "t2"."scored_at" ASC, "t2"."prediction_id" ASC
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
      ) AS _w
    FROM (
      SELECT
        *
      FROM "predictions" AS "t0"
      WHERE
        "t0"."recorded_at" <= CAST('2024-05-01T00:00:00+00:00' AS TIMESTAMPTZ)
        AND "t0"."scored_at" <= CAST('2024-05-01T00:00:00+00:00' AS TIMESTAMPTZ)
    ) AS "t2"
  ) AS _t
  WHERE
    (
      _w - 1
    ) = 0
)
SELECT
  *
FROM (
  SELECT
    "t10"."scorer",
    "t10"."model_version",
    "t10"."cohort",
    "t10"."bin",
    COUNT(*) AS "n",
    SUM("t10"."_p") AS "sum_p",
    SUM("t10"."_p" * "t10"."_p") AS "sum_p2",
    SUM("t10"."_y") AS "sum_y",
    SUM("t10"."_p" * "t10"."_y") AS "sum_py"
  FROM (
    SELECT
      "t9"."prediction_id",
      "t9"."entity_id",
      "t9"."scorer",
      "t9"."model_version",
      "t9"."score",
      "t9"."score_kind",
      "t9"."probability",
      "t9"."abstained",
      "t9"."scored_at",
      "t9"."recorded_at",
      "t9"."horizon_days",
      "t9"."target_event",
      "t9"."input_hash",
      "t9"."seed",
      "t9"."source",
      "t9"."segments",
      "t9"."label",
      "t9"."matured",
      "t9"."probability" AS "_p",
      CAST("t9"."label" = 'positive' AS DOUBLE PRECISION) AS "_y",
      TO_CHAR("t9"."scored_at", 'YYYY-MM') AS "cohort",
      CASE
        WHEN (
          "t9"."probability" IS NULL
        )
        OR (
          "t9"."probability" = CAST('NaN' AS DOUBLE PRECISION)
        )
        OR (
          "t9"."probability" < 0.0
        )
        OR (
          "t9"."probability" > 1.0
        )
        THEN -1
        WHEN "t9"."probability" < 0.1
        THEN 0
        WHEN "t9"."probability" < 0.2
        THEN 1
        WHEN "t9"."probability" < 0.3
        THEN 2
        WHEN "t9"."probability" < 0.4
        THEN 3
        WHEN "t9"."probability" < 0.5
        THEN 4
        WHEN "t9"."probability" < 0.6
        THEN 5
        WHEN "t9"."probability" < 0.7
        THEN 6
        WHEN "t9"."probability" < 0.8
        THEN 7
        WHEN "t9"."probability" < 0.9
        THEN 8
        ELSE 9
      END AS "bin"
    FROM (
      SELECT
        "t6"."prediction_id",
        "t6"."entity_id",
        "t6"."scorer",
        "t6"."model_version",
        "t6"."score",
        "t6"."score_kind",
        "t6"."probability",
        "t6"."abstained",
        "t6"."scored_at",
        "t6"."recorded_at",
        "t6"."horizon_days",
        "t6"."target_event",
        "t6"."input_hash",
        "t6"."seed",
        "t6"."source",
        "t6"."segments",
        CASE
          WHEN "t6"."prediction_id" IN (
            SELECT
              "t7"."prediction_id"
            FROM "t5" AS "t7"
            INNER JOIN (
              SELECT
                *
              FROM "outcomes" AS "t1"
              WHERE
                "t1"."recorded_at" <= CAST('2024-05-01T00:00:00+00:00' AS TIMESTAMPTZ)
            ) AS "t4"
              ON "t7"."entity_id" = "t4"."entity_id"
              AND "t7"."target_event" = "t4"."event"
              AND "t4"."occurred_at" >= "t7"."scored_at"
              AND "t4"."occurred_at" < (
                "t7"."scored_at" + MAKE_INTERVAL(days => CAST("t7"."horizon_days" AS INT))
              )
          )
          THEN 'positive'
          WHEN (
            "t6"."scored_at" + MAKE_INTERVAL(days => CAST("t6"."horizon_days" AS INT))
          ) <= CAST('2024-05-01T00:00:00+00:00' AS TIMESTAMPTZ)
          THEN 'negative'
          ELSE 'pending'
        END AS "label",
        (
          "t6"."scored_at" + MAKE_INTERVAL(days => CAST("t6"."horizon_days" AS INT))
        ) <= CAST('2024-05-01T00:00:00+00:00' AS TIMESTAMPTZ) AS "matured"
      FROM "t5" AS "t6"
    ) AS "t9"
    WHERE
      "t9"."matured" AND "t9"."probability" IS NOT NULL AND NOT (
        "t9"."abstained"
      )
  ) AS "t10"
  GROUP BY
    1,
    2,
    3,
    4
) AS "t11"
ORDER BY
  "t11"."scorer" ASC,
  "t11"."model_version" ASC,
  "t11"."cohort" ASC,
  "t11"."bin" ASC
