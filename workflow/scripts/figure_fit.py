"""A model's fitted curve with its 95% band over the data points, from its model frame."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.figures import fit_figure
from glmflow.formula import response_values
from glmflow.frame import read_frame
from glmflow.interpret import fitted_curve
from glmflow.io import logged, read_csv, write_text

with logged(snakemake):
    files, figure = snakemake.input, snakemake.params.figure
    frame = read_frame(files.frame, files.frame_json)
    tidy, vcov = read_csv(files.tidy), read_csv(files.vcov, index_col="term")
    curve = fitted_curve(frame, tidy, vcov, figure["x"], figure.get("by"))
    response = frame.spec["formula"].split("~")[0].strip()
    # A factor or logical response is drawn as the fit codes it (0/1), on the scale of the curve.
    points = frame.model_rows()
    points = points.assign(**{response: response_values(points[response])})
    svg = fit_figure(
        points,
        figure["x"],
        response,
        curve,
        figure.get("by"),
        figure.get("y_label", response),
        figure.get("point_alpha", 1),
    )
    write_text(snakemake.output[0], svg)
