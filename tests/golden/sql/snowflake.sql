-- assay per-bin sums (snowflake): labels as of 2024-05-01T00:00:00+00:00, policy first
-- edges: 0.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0
SELECT
  *
FROM (
  SELECT
    "t13"."scorer",
    "t13"."model_version",
    "t13"."cohort",
    "t13"."bin",
    COUNT(*) AS "n",
    SUM("t13"."_p") AS "sum_p",
    SUM("t13"."_p" * "t13"."_p") AS "sum_p2",
    SUM("t13"."_y") AS "sum_y",
    SUM("t13"."_p" * "t13"."_y") AS "sum_py"
  FROM (
    SELECT
      "t12"."prediction_id",
      "t12"."entity_id",
      "t12"."scorer",
      "t12"."model_version",
      "t12"."score",
      "t12"."score_kind",
      "t12"."probability",
      "t12"."abstained",
      "t12"."scored_at",
      "t12"."recorded_at",
      "t12"."horizon_days",
      "t12"."target_event",
      "t12"."input_hash",
      "t12"."seed",
      "t12"."source",
      "t12"."segments",
      "t12"."label",
      "t12"."matured",
      "t12"."probability" AS "_p",
      CAST(CASE WHEN "t12"."label" = 'positive' THEN 1 ELSE 0 END AS DOUBLE) AS "_y",
      TO_CHAR("t12"."scored_at", 'yyyy-mm') AS "cohort",
      CASE
        WHEN (
          "t12"."probability" IS NULL
        )
        OR (
          "t12"."probability" = CAST('NaN' AS DOUBLE)
        )
        OR (
          "t12"."probability" < 0.0
        )
        OR (
          "t12"."probability" > 1.0
        )
        THEN -1
        WHEN "t12"."probability" < 0.1
        THEN 0
        WHEN "t12"."probability" < 0.2
        THEN 1
        WHEN "t12"."probability" < 0.3
        THEN 2
        WHEN "t12"."probability" < 0.4
        THEN 3
        WHEN "t12"."probability" < 0.5
        THEN 4
        WHEN "t12"."probability" < 0.6
        THEN 5
        WHEN "t12"."probability" < 0.7
        THEN 6
        WHEN "t12"."probability" < 0.8
        THEN 7
        WHEN "t12"."probability" < 0.9
        THEN 8
        ELSE 9
      END AS "bin"
    FROM (
      SELECT
        "t11".*
        EXCLUDE ("converted_at")
      FROM (
        SELECT
          "t10"."prediction_id",
          "t10"."entity_id",
          "t10"."scorer",
          "t10"."model_version",
          "t10"."score",
          "t10"."score_kind",
          "t10"."probability",
          "t10"."abstained",
          "t10"."scored_at",
          "t10"."recorded_at",
          "t10"."horizon_days",
          "t10"."target_event",
          "t10"."input_hash",
          "t10"."seed",
          "t10"."source",
          "t10"."segments",
          "t10"."converted_at",
          CASE
            WHEN "t10"."converted_at" IS NOT NULL
            THEN 'positive'
            WHEN DATEADD(DAY, "t10"."horizon_days", "t10"."scored_at") <= TIMESTAMP_TZ_FROM_PARTS(2024, 5, 1, 0, 0, 0, 0, 'UTC')
            THEN 'negative'
            ELSE 'pending'
          END AS "label",
          DATEADD(DAY, "t10"."horizon_days", "t10"."scored_at") <= TIMESTAMP_TZ_FROM_PARTS(2024, 5, 1, 0, 0, 0, 0, 'UTC') AS "matured"
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
            "t9"."converted_at"
          FROM (
            SELECT
              "t4"."prediction_id",
              "t4"."entity_id",
              "t4"."scorer",
              "t4"."model_version",
              "t4"."score",
              "t4"."score_kind",
              "t4"."probability",
              "t4"."abstained",
              "t4"."scored_at",
              "t4"."recorded_at",
              "t4"."horizon_days",
              "t4"."target_event",
              "t4"."input_hash",
              "t4"."seed",
              "t4"."source",
              "t4"."segments"
            FROM (
              SELECT
                "t3"."prediction_id",
                "t3"."entity_id",
                "t3"."scorer",
                "t3"."model_version",
                "t3"."score",
                "t3"."score_kind",
                "t3"."probability",
                "t3"."abstained",
                "t3"."scored_at",
                "t3"."recorded_at",
                "t3"."horizon_days",
                "t3"."target_event",
                "t3"."input_hash",
                "t3"."seed",
                "t3"."source",
                "t3"."segments",
                GREATEST("t3"."recorded_at", "t3"."scored_at") AS "visible_from",
                MIN(GREATEST("t3"."recorded_at", "t3"."scored_at")) OVER (
                  PARTITION BY "t3"."entity_id", "t3"."scorer"
                  ORDER BY "t3"."scored_at" ASC, "t3"."prediction_id" ASC
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 preceding
                ) AS "displaced_at"
              FROM (
                SELECT
                  *
                FROM "predictions" AS "t0"
                WHERE
                  "t0"."recorded_at" <= TIMESTAMP_TZ_FROM_PARTS(2024, 5, 1, 0, 0, 0, 0, 'UTC')
                  AND "t0"."scored_at" <= TIMESTAMP_TZ_FROM_PARTS(2024, 5, 1, 0, 0, 0, 0, 'UTC')
              ) AS "t3"
            ) AS "t4"
            WHERE
              "t4"."visible_from" <= TIMESTAMP_TZ_FROM_PARTS(2024, 5, 1, 0, 0, 0, 0, 'UTC')
              AND (
                (
                  "t4"."displaced_at" IS NULL
                )
                OR (
                  "t4"."displaced_at" > TIMESTAMP_TZ_FROM_PARTS(2024, 5, 1, 0, 0, 0, 0, 'UTC')
                )
              )
          ) AS "t6"
          LEFT OUTER JOIN (
            SELECT
              "t7"."key",
              MIN("t7"."at") AS "converted_at"
            FROM (
              SELECT
                "t6"."prediction_id" AS "key",
                "t2"."recorded_at" AS "at"
              FROM (
                SELECT
                  "t4"."prediction_id",
                  "t4"."entity_id",
                  "t4"."scorer",
                  "t4"."model_version",
                  "t4"."score",
                  "t4"."score_kind",
                  "t4"."probability",
                  "t4"."abstained",
                  "t4"."scored_at",
                  "t4"."recorded_at",
                  "t4"."horizon_days",
                  "t4"."target_event",
                  "t4"."input_hash",
                  "t4"."seed",
                  "t4"."source",
                  "t4"."segments"
                FROM (
                  SELECT
                    "t3"."prediction_id",
                    "t3"."entity_id",
                    "t3"."scorer",
                    "t3"."model_version",
                    "t3"."score",
                    "t3"."score_kind",
                    "t3"."probability",
                    "t3"."abstained",
                    "t3"."scored_at",
                    "t3"."recorded_at",
                    "t3"."horizon_days",
                    "t3"."target_event",
                    "t3"."input_hash",
                    "t3"."seed",
                    "t3"."source",
                    "t3"."segments",
                    GREATEST("t3"."recorded_at", "t3"."scored_at") AS "visible_from",
                    MIN(GREATEST("t3"."recorded_at", "t3"."scored_at")) OVER (
                      PARTITION BY "t3"."entity_id", "t3"."scorer"
                      ORDER BY "t3"."scored_at" ASC, "t3"."prediction_id" ASC
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 preceding
                    ) AS "displaced_at"
                  FROM (
                    SELECT
                      *
                    FROM "predictions" AS "t0"
                    WHERE
                      "t0"."recorded_at" <= TIMESTAMP_TZ_FROM_PARTS(2024, 5, 1, 0, 0, 0, 0, 'UTC')
                      AND "t0"."scored_at" <= TIMESTAMP_TZ_FROM_PARTS(2024, 5, 1, 0, 0, 0, 0, 'UTC')
                  ) AS "t3"
                ) AS "t4"
                WHERE
                  "t4"."visible_from" <= TIMESTAMP_TZ_FROM_PARTS(2024, 5, 1, 0, 0, 0, 0, 'UTC')
                  AND (
                    (
                      "t4"."displaced_at" IS NULL
                    )
                    OR (
                      "t4"."displaced_at" > TIMESTAMP_TZ_FROM_PARTS(2024, 5, 1, 0, 0, 0, 0, 'UTC')
                    )
                  )
              ) AS "t6"
              INNER JOIN "outcomes" AS "t2"
                ON "t6"."entity_id" = "t2"."entity_id"
                AND "t6"."target_event" = "t2"."event"
                AND "t2"."occurred_at" >= "t6"."scored_at"
                AND "t2"."occurred_at" < DATEADD(DAY, "t6"."horizon_days", "t6"."scored_at")
                AND "t2"."recorded_at" <= TIMESTAMP_TZ_FROM_PARTS(2024, 5, 1, 0, 0, 0, 0, 'UTC')
            ) AS "t7"
            GROUP BY
              1
          ) AS "t9"
            ON "t6"."prediction_id" = "t9"."key"
        ) AS "t10"
      ) AS "t11"
    ) AS "t12"
    WHERE
      "t12"."matured"
      AND "t12"."probability" IS NOT NULL
      AND NOT (
        "t12"."abstained"
      )
  ) AS "t13"
  GROUP BY
    1,
    2,
    3,
    4
) AS "t14"
ORDER BY
  "t14"."scorer" ASC,
  "t14"."model_version" ASC,
  "t14"."cohort" ASC,
  "t14"."bin" ASC
