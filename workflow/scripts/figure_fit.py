"""A model's fitted curve with its 95% band over the data points."""

from glmflow.datafile import read_dataset
from glmflow.figures import fit_figure
from glmflow.formula import response_values
from glmflow.interpret import fitted_curve
from glmflow.io import logged, read_csv, write_text
from glmflow.models import model_data

with logged(snakemake):
    files, params = snakemake.input, snakemake.params
    spec, figure = params.spec, params.figure
    data = read_dataset(files.data)
    tidy, vcov = read_csv(files.tidy), read_csv(files.vcov, index_col="term")
    curve = fitted_curve(data, spec, params.model, tidy, vcov, figure["x"], figure.get("by"))
    points = model_data(data, spec, params.model)
    response = spec["formula"].split("~")[0].strip()
    # A factor or logical response is drawn as the fit codes it (0/1), on the scale of the curve.
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
