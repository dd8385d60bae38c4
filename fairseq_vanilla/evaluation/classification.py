"""Classification scores from true and predicted classes: confusion matrix, accuracy, per-class precision / recall /
F1 (and their macro average), and the Markdown tables of a run report."""

from typing import Dict, List, Sequence

Matrix = List[List[int]]  # matrix[t][p]: examples of true class t predicted as class p


def confusion_matrix(true: Sequence[int], predicted: Sequence[int], n_classes: int) -> Matrix:
    """``matrix[t][p]``: how many examples of true class t were predicted as class p."""
    if len(true) != len(predicted):
        raise ValueError(f"{len(true)} true classes but {len(predicted)} predictions")
    matrix = [[0] * n_classes for _ in range(n_classes)]
    for t, p in zip(true, predicted):
        if not (0 <= t < n_classes and 0 <= p < n_classes):
            raise ValueError(f"a class index outside 0…{n_classes - 1}: true {t}, predicted {p}")
        matrix[t][p] += 1
    return matrix


def accuracy(matrix: Matrix) -> float:
    """The fraction of examples on the diagonal."""
    total = sum(map(sum, matrix))
    if not total:
        raise ValueError("no example")
    return sum(matrix[c][c] for c in range(len(matrix))) / total


def class_scores(matrix: Matrix) -> List[Dict[str, float]]:
    """Per class: precision (of the examples predicted as it), recall (of its examples), F1 (their harmonic mean)
    and support (its examples); a ratio over no example is 0, as scikit-learn's ``zero_division=0``."""
    scores = []
    for c, row in enumerate(matrix):
        predicted = sum(r[c] for r in matrix)
        precision = matrix[c][c] / predicted if predicted else 0.0
        recall = matrix[c][c] / sum(row) if sum(row) else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append({"precision": precision, "recall": recall, "f1": f1, "support": sum(row)})
    return scores


def macro_f1(matrix: Matrix) -> float:
    """The unweighted mean of the classes' F1."""
    return sum(s["f1"] for s in class_scores(matrix)) / len(matrix)


def markdown_scores(classes: Sequence[str], matrix: Matrix) -> List[str]:
    """Markdown lines: accuracy and macro F1, a table of each class's precision / recall / F1 / support, and the
    confusion matrix (rows: true class, columns: predicted class)."""
    lines = [
        f"- accuracy {accuracy(matrix):.4f}, macro F1 {macro_f1(matrix):.4f} on {sum(map(sum, matrix))} examples",
        "",
        "| class | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, s in zip(classes, class_scores(matrix)):
        lines.append(f"| {name} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | {s['support']} |")
    lines += ["", "Confusion matrix (rows: true class, columns: predicted class):", ""]
    lines += ["| true \\ predicted | " + " | ".join(classes) + " |", "| --- |" + " --- |" * len(classes)]
    lines += [f"| {name} | " + " | ".join(map(str, row)) + " |" for name, row in zip(classes, matrix)]
    return lines
