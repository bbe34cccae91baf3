mod flows;
mod parsers;
