"""Every statistic the HTML report shows, explained once: a plain gloss, a definition, a source.

The report writes a term's :attr:`Term.gloss` beside the number and folds its
:attr:`Term.definition` and :attr:`Term.reference` into a ``<details>`` under it
(:func:`assay.report.html.explain`). All the wording lives here, so a statistic reads the same
wherever it appears. Plain text only: the report escapes it, and no reference is a link (the
report loads nothing and links nowhere outside itself).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """One statistic: its name, a one-line gloss, its definition and where it comes from."""

    name: str
    gloss: str
    definition: str
    reference: str


_HIERARCHY = (
    "B. Van Calster, D. Nieboer, Y. Vergouwe, B. De Cock, M. J. Pencina and E. W. Steyerberg, "
    "“A calibration hierarchy for risk models was defined: from utopia to empirical data”, "
    "Journal of Clinical Epidemiology 74, 2016, pp. 167–176."
)

GLOSSARY: dict[str, Term] = {
    "ece": Term(
        "Calibration error (ECE)",
        "The typical gap between the conversion rate a score promises and the rate that "
        "happens, in percentage points (pts): promising 20% when 18% convert is a 2 pts gap.",
        "Expected calibration error: leads are sorted into bins of equal size by score; each "
        "bin's gap |mean score − observed conversion rate| is weighted by its share of the "
        "leads and the gaps are summed. The headline is the posterior median of that error "
        "with its credible interval (the range holding the stated share, e.g. 90%, of what the "
        "data allow), which corrects the upward bias the plain (“plug-in”) value has on few "
        "leads.",
        "M. P. Naeini, G. F. Cooper and M. Hauskrecht, “Obtaining well calibrated "
        "probabilities using Bayesian binning”, Proc. AAAI, 2015.",
    ),
    "noise_floor": Term(
        "Noise floor",
        "The calibration error a perfectly calibrated score would still show on these leads by "
        "chance alone; an error near it means nothing.",
        "The outcomes are redrawn 1,000 times as if every score were exactly right (each lead "
        "converts with the probability it was given) and the error is recomputed on the same "
        "bins. The band holds 90% of those draws; p is the share of draws at least as large "
        "as the error observed, so a small p says the gap is more than chance.",
        "J. Bröcker and L. A. Smith, “Increasing the reliability of reliability diagrams”, "
        "Weather and Forecasting 22(3), 2007, pp. 651–661.",
    ),
    "observed_expected": Term(
        "Observed / expected conversions",
        "Conversions that happened divided by conversions the score promised (the sum of its "
        "scores): 1 is honest, below 1 it over-promises, above 1 it under-promises.",
        "Calibration in the large, the first level of the calibration hierarchy: O/E = Σy / Σp "
        "over the resolved leads, with its posterior credible interval. The verdict asks "
        "whether it lies inside the tolerance band.",
        _HIERARCHY,
    ),
    "slope": Term(
        "Calibration slope",
        "Whether the scores are spread the right amount: 1 is right, below 1 the scores are "
        "too extreme (over-confident), above 1 too timid (under-confident).",
        "The slope of a logistic regression of the outcome on the log-odds of the score, the "
        "second level of the calibration hierarchy. A slope of 0.5 means the log-odds the score "
        "states are twice as far from the average as the outcomes bear out.",
        _HIERARCHY,
    ),
    "auc": Term(
        "AUC (ranking)",
        "How well the score ranks: the chance it scores a random converter above a random "
        "non-converter; 0.5 is a coin flip, 1 is perfect.",
        "The area under the ROC curve (the Mann–Whitney statistic). Labels: below 0.6 barely "
        "better than chance, 0.6–0.7 weakly, 0.7–0.8 acceptably, 0.8–0.9 well, from 0.9 very "
        "well. It ignores whether the scores are right as probabilities; the calibration error "
        "measures that.",
        "D. W. Hosmer and S. Lemeshow, Applied Logistic Regression, 2nd ed., Wiley, 2000, "
        "§5.2.4; J. A. Hanley and B. J. McNeil, Radiology 143(1), 1982, pp. 29–36.",
    ),
    "brier": Term(
        "Brier score and its decomposition",
        "The mean squared gap between score and outcome (0 is perfect); it mixes calibration "
        "and ranking, which the decomposition separates.",
        "Brier = mean of (p − y)². The CORP decomposition splits it as Brier = MCB − DSC + UNC: "
        "MCB (miscalibration) is what the best monotone recalibration of the score, fitted by "
        "pool-adjacent-violators (PAV), would remove; DSC (discrimination) is what the ranking "
        "earns; UNC (uncertainty) is the Brier score of always predicting the overall rate.",
        "T. Dimitriadis, T. Gneiting and A. I. Jordan, “Stable reliability diagrams for "
        "probabilistic classifiers”, PNAS 118(8), 2021, e2016191118 (CORP).",
    ),
    "log_loss": Term(
        "Log loss",
        "The mean surprise at each outcome (0 is perfect); a score of exactly 0 or 1 that turns "
        "out wrong makes it infinite.",
        "−mean[y·ln p + (1 − y)·ln(1 − p)], in nats. Like the Brier score it rewards both "
        "calibration and ranking, but punishes confident mistakes far harder.",
        "I. J. Good, “Rational decisions”, Journal of the Royal Statistical Society B 14(1), "
        "1952, pp. 107–114.",
    ),
    "e_value": Term(
        "Evidence E (e-value)",
        "The monitor's evidence against calibration: above 1/α it is an alarm with error rate α "
        "(above 20 at 5%), however often anyone looks.",
        "E is the wealth of a fair bet against the hypothesis that the score is calibrated "
        "within tolerance: it grows as outcomes contradict the scores and shrinks when they "
        "agree. By Ville's inequality the chance that E ever reaches 1/α while the score is "
        "calibrated is at most α, so checking the monitor every day raises no false alarms. "
        "Huge values are written as powers of ten: 10 raised to 468 is a 1 followed by 468 "
        "zeros, overwhelming evidence.",
        "J. Ville, Étude critique de la notion de collectif, Gauthier-Villars, 1939; A. Ramdas, "
        "P. Grünwald, V. Vovk and G. Shafer, “Game-theoretic statistics and safe anytime-valid "
        "inference”, Statistical Science 38(4), 2023.",
    ),
    "e_cusum": Term(
        "Drift detector (e-CUSUM)",
        "Raises an alarm when a score that was calibrated starts to drift away; its threshold "
        "sets how many leads pass, on average, before a false alarm.",
        "A cumulative sum of e-value bets that restarts after every stretch of evidence for "
        "calibration, so a change that begins late is caught as quickly as one at the start. "
        "Its mean number of leads to a false alarm is at least its threshold.",
        "J. Shin, A. Ramdas and A. Rinaldo, “E-detectors: a nonparametric framework for "
        "sequential change detection”, New England Journal of Statistics in Data Science, 2023.",
    ),
    "aurc": Term(
        "AURC and E-AURC",
        "Working down the list best-first, the share of leads acted on that do not convert, "
        "averaged over every list length; lower is better. E-AURC is the excess over a perfect "
        "ranking.",
        "The area under the risk–coverage curve: risk (share not converting among the leads "
        "acted on) against coverage (share of leads acted on, highest scores first). E-AURC "
        "subtracts the area of an oracle that ranks every converter first, so it measures the "
        "ranking alone.",
        "Y. Geifman, G. Uziel and R. El-Yaniv, “Bias-reduced uncertainty estimation for deep "
        "neural classifiers”, ICLR, 2019.",
    ),
    "jeffreys": Term(
        "Bucket interval (Jeffreys)",
        "The range the bucket's true conversion rate plausibly lies in, given its leads.",
        "The Jeffreys interval: the central part (90%) of the Beta(k + ½, n − k + ½) "
        "distribution for k conversions among n leads. It stays sensible with few conversions, "
        "where the textbook ± formula fails. Buckets too small to judge say “not yet”.",
        "L. D. Brown, T. T. Cai and A. DasGupta, “Interval estimation for a binomial "
        "proportion”, Statistical Science 16(2), 2001, pp. 101–133.",
    ),
    "fixed_sequence": Term(
        "Certified threshold (fixed-sequence testing)",
        "A score above which an action may fire on its own: at least the target share of those "
        "leads convert, with the stated confidence.",
        "Thresholds are tested from the highest score down, each at level δ, stopping at the "
        "first that fails. Because the order is fixed in advance no correction for testing many "
        "thresholds is needed: every certified threshold has precision at least the target "
        "with probability at least 1 − δ. The p-value is the chance of so many conversions if "
        "the precision were just below the target (exact binomial, Clopper–Pearson).",
        "A. N. Angelopoulos, S. Bates, E. J. Candès, M. I. Jordan and L. Lei, “Learn then Test: "
        "calibrating predictive algorithms to achieve risk control”, arXiv:2110.01052, 2021.",
    ),
    "overdispersion": Term(
        "Funnel plot and over-dispersion φ",
        "Each dot is a segment; inside the funnel it differs from the overall rate no more than "
        "chance would make it. φ says how much more the segments differ than chance: 1 is "
        "chance alone.",
        "The limits are exact binomial 95% and 99.8% ranges around the reference rate for a "
        "segment of each size. φ is the mean squared z-score of the segments' rates; when the "
        "segments together differ significantly more than chance (a χ² test at 95%), the "
        "limits are widened by √φ so that only segments unusual beyond that spread stand out.",
        "D. J. Spiegelhalter, “Funnel plots for comparing institutional performance”, "
        "Statistics in Medicine 24(8), 2005, pp. 1185–1202.",
    ),
    "shrinkage": Term(
        "Shrunken rates",
        "Small segments' rates are pulled toward the average segment's rate, so a lucky streak "
        "of a few leads does not look like a great segment.",
        "Two different averages appear. The reference is the overall conversion rate of all "
        "leads pooled (a big segment weighs more); verdicts compare each segment with it. The "
        "prior mean is the average segment's rate, each segment counting once, and is where "
        "the shrinkage pulls. A segment's shrunken rate is (conversions + M · prior mean) / "
        "(leads + M); its shrinkage M / (M + leads) is the weight on the prior mean, large for "
        "small segments. The prior strength M is fitted from the segments themselves "
        "(empirical Bayes).",
        "B. Efron and C. Morris, “Data analysis using Stein's estimator and its "
        "generalizations”, Journal of the American Statistical Association 70(350), 1975.",
    ),
    "honesty": Term(
        "Honesty (abstention on thin vs other leads)",
        "The share of leads a scorer declined to score, on leads from segments with little "
        "evidence against the rest: an honest scorer abstains more where it knows less.",
        "Abstentions count leads scored “not yet” or left empty, among the leads each scorer "
        "was sent. Thin-evidence leads belong to segments with fewer than 30 leads. Shown only "
        "when the report groups leads by a segment attribute.",
        "assay's comparison of scorers (assay.stats.compare): abstention on the common set.",
    ),
    "honest_score": Term(
        "Honest score",
        "The vendor's raw score turned into the conversion rate this team's own outcomes "
        "support, with “not yet” where they are too few; it is judged only on leads whose "
        "outcomes came after the map version that served them was built, never on outcomes it "
        "learned from.",
        "A Bayesian calibration map from raw score (and segment) to probability, rebuilt as "
        "outcomes mature; each served score is recorded as a prediction of VENDOR~honest with "
        "its map version. Side by side, both scores are judged on the same leads: matured, "
        "scored by the vendor, and claimed by the honest score (an abstention is no claim). A "
        "lead scored before its map version was built, or with an outcome recorded by then, is "
        "left out. The “not yet” share counts every served honest score that abstained, as "
        "“not yet” (too little evidence near that score) or “out of range” (a raw score "
        "outside what the map has seen), matured or not.",
        "assay's honest score (assay.stats.honest, assay.models.honest); the held-out rule of "
        "assay.ledger.labels.",
    ),
}
