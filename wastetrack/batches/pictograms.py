"""The hazard pictograms of the HJ 1276-2022 label, drawn as simple vector shapes so a label
needs no image files and stays sharp at any of its sizes."""

import math

from PIL import ImageDraw

from wastetrack.batches.drawing import load_font


def draw_pictogram(
    draw: ImageDraw.ImageDraw, hazard: str, centre: tuple[int, int], side: int
) -> None:
    """The hazard's pictogram as simple vector shapes: a white diamond framed in red with a
    black symbol (skull, corrosion, flame, burst, biohazard), after the GHS-style signs
    HJ 1276 prints."""
    cx, cy = centre
    r = side // 2
    draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill="white")
    frame = max(side // 14, 2)
    draw.line(
        [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy), (cx, cy - r)],
        fill="#D00000",
        width=frame,
        joint="curve",
    )
    s = r * 0.5  # the symbol's half-size
    stroke = max(side // 18, 2)
    if hazard == "T":  # skull and crossbones
        draw.line([(cx - s, cy + s * 0.1), (cx + s, cy + s * 0.9)], fill="black", width=stroke)
        draw.line([(cx + s, cy + s * 0.1), (cx - s, cy + s * 0.9)], fill="black", width=stroke)
        draw.ellipse([cx - s * 0.6, cy - s * 0.9, cx + s * 0.6, cy + s * 0.3], fill="black")
        for dx in (-0.25, 0.25):
            e = s * 0.15
            draw.ellipse(
                [cx + dx * s - e, cy - s * 0.4 - e, cx + dx * s + e, cy - s * 0.4 + e],
                fill="white",
            )
    elif hazard == "C":  # liquid dripping from two tubes onto a hand and a bar
        for dx in (-0.5, 0.35):
            x0 = cx + dx * s
            draw.polygon(
                [
                    (x0, cy - s),
                    (x0 + s * 0.25, cy - s * 1.0),
                    (x0 + s * 0.4, cy - s * 0.4),
                    (x0 + s * 0.15, cy - s * 0.4),
                ],
                fill="black",
            )
            e = s * 0.1
            draw.ellipse([x0 + s * 0.2 - e, cy - e, x0 + s * 0.2 + e, cy + e], fill="black")
        draw.rectangle([cx - s, cy + s * 0.4, cx - s * 0.1, cy + s * 0.8], fill="black")
        draw.rectangle([cx + s * 0.1, cy + s * 0.4, cx + s, cy + s * 0.8], fill="black")
        draw.rectangle([cx + s * 0.3, cy + s * 0.4, cx + s * 0.6, cy + s * 0.55], fill="white")
    elif hazard == "I":  # a flame over a base line
        draw.polygon(
            [
                (cx, cy - s * 1.1),
                (cx + s * 0.55, cy - s * 0.2),
                (cx + s * 0.6, cy + s * 0.5),
                (cx, cy + s * 0.75),
                (cx - s * 0.6, cy + s * 0.5),
                (cx - s * 0.5, cy - s * 0.1),
                (cx - s * 0.2, cy + s * 0.2),
            ],
            fill="black",
        )
        draw.line([(cx - s, cy + s), (cx + s, cy + s)], fill="black", width=stroke)
    elif hazard == "R":  # an exploding bomb: a burst of rays round a ball
        for k in range(12):
            angle = k * math.pi / 6
            inner_r, outer_r = s * 0.45, s * (1.05 if k % 2 == 0 else 0.8)
            draw.line(
                [
                    (cx + inner_r * math.cos(angle), cy + inner_r * math.sin(angle)),
                    (cx + outer_r * math.cos(angle), cy + outer_r * math.sin(angle)),
                ],
                fill="black",
                width=stroke,
            )
        draw.ellipse([cx - s * 0.4, cy - s * 0.4, cx + s * 0.4, cy + s * 0.4], fill="black")
    elif hazard == "In":  # biohazard: three rings round a centre
        for k in range(3):
            angle = -math.pi / 2 + k * 2 * math.pi / 3
            ox, oy = cx + s * 0.4 * math.cos(angle), cy + s * 0.4 * math.sin(angle)
            draw.ellipse(
                [ox - s * 0.5, oy - s * 0.5, ox + s * 0.5, oy + s * 0.5],
                outline="black",
                width=stroke,
            )
        draw.ellipse([cx - s * 0.18, cy - s * 0.18, cx + s * 0.18, cy + s * 0.18], fill="black")
    else:
        draw.text(
            (cx, cy), hazard, fill="black", anchor="mm", font=load_font(None, max(side // 3, 10))
        )
